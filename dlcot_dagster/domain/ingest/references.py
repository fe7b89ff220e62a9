"""The reference answer of each trace, and where it came from (``reference_source``).

Tried in this order (``SourceSpec.reference_sources`` may leave some out):

``given``      a reference-answer field of the record (top level, or nested in a per-turn ``info`` /
               ``metadata`` / ``reward_model`` dict). A top-level answer field that is present but null or
               empty is a broken record (``missing_field`` / ``empty_field``), as before.
``extracted``  the final statement (``\\boxed{}``, ``**Final Answer**``, "the answer is", ``#### N``) of a worked
               reference solution of the record (``ground_truth_solution``, ``solution`` when it is not the
               trace itself); a one-line solution is the answer itself.
``joined``     a problems file named in the source spec (``problems:``), matched by id or by normalized
               problem text, with the benchmark files' field mappings (:mod:`..students.benchmarks`).
``majority``   the most common final answer among at least ``majority_k`` generations of the same problem
               (within a row and across rows of the partition with the same normalized problem text),
               answers grouped by the answer checker's equivalence; a tie has no majority.
``self``       the trace's own final answer, the last resort: correctness checks then test only
               self-consistency. With ``require_reference: true`` such a trace is rejected ``no_reference``.

The first three are decided per row while parsing. ``majority`` and ``self`` need every generation of a problem:
rows left without a reference are resolved after the partition is read (:class:`MajorityVotes` keeps one small
entry per distinct pending problem, never the rows). Nothing here imports dagster.
"""

from __future__ import annotations

import re
import unicodedata
from hashlib import blake2b
from pathlib import Path
from typing import Iterable

from .normalize import RecordError, as_text
from .schema import ReferenceSource, RejectReason
from .sources import REFERENCE_FIELDS, ProblemsFile, SourceSpec

GIVEN, EXTRACTED, JOINED, MAJORITY, SELF = (s.value for s in ReferenceSource)
STRONG_KINDS = frozenset(("boxed", "final_answer", "answer_is", "hash", "choice"))
SHORT_SOLUTION_CHARS = 64
OWN_ANSWER_TAIL_CHARS = 8_000  # the end of a thinking with no final response: where its answer is
_WS_RE = re.compile(r"\s+")
_ALNUM_RE = re.compile(r"\w")


def normalize_problem(text: str) -> str:
    """Problem text for matching: Unicode-compatible form, case-folded, whitespace collapsed."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def problem_key(text: str | None) -> int | None:
    """A 63-bit key of the normalized problem text (one entry per distinct problem in the vote table)."""
    if text is None:
        return None
    d = blake2b(normalize_problem(text).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(d, "little") >> 1


# --------------------------------------------------------------------------------------------- per row


def given_reference(row) -> tuple[str, str] | None:
    """``(answer, "given")`` from an answer field, or None; raises for a present but null / empty top-level field."""
    if row.given_declared:
        if row.given_value is None:
            raise RecordError(
                RejectReason.MISSING_FIELD,
                f"no reference_answer field (looked for {row.given_field or ' / '.join(REFERENCE_FIELDS[:6])})",
                row.given_field if row.given_field and row.given_field not in REFERENCE_FIELDS else "reference_answer",
            )
        text = as_text(row.given_value, row.given_field or "reference_answer", join_lists=True)
        if text is None or not text.strip():
            raise RecordError(RejectReason.EMPTY_FIELD, "reference_answer is empty", row.given_field)
        return text.strip(), GIVEN
    if row.nested_given is not None:
        where, value = row.nested_given
        try:
            text = as_text(value, where, join_lists=True)
        except RecordError:
            return None
        if text and text.strip():
            return text.strip(), GIVEN
    return None


def extracted_reference(row) -> tuple[str, str] | None:
    """``(answer, "extracted")``: the last strong answer statement of a worked reference solution."""
    from ..answers import extract_final_answer

    for _name, text in row.worked:
        m = extract_final_answer(text)
        if m is not None and m.kind in STRONG_KINDS and m.text.strip():
            return m.text.strip(), EXTRACTED
        short = text.strip()
        if short and len(short) <= SHORT_SOLUTION_CHARS and "\n" not in short:
            return short, EXTRACTED
    return None


class ProblemsTable:
    """Reference answers of a problems file by raw id and by normalized problem text."""

    def __init__(self, spec: ProblemsFile):
        from ..students.benchmarks import BenchmarkSpec, iter_reference_rows

        self.spec = spec
        bench = BenchmarkSpec(
            name=spec.name, path=spec.path, problem_field=spec.problem_field, answer_field=spec.answer_field,
            id_field=spec.id_field, answer_transform=spec.answer_transform,
        )
        self.by_id: dict[str, str] = {}
        self.by_problem: dict[int, str] = {}
        path = Path(spec.path).expanduser()
        if not path.is_file():
            raise ValueError(f"source spec problems.path {spec.path!r}: no such file")
        for rid, problem, answer in iter_reference_rows(bench, path):
            if not answer.strip():
                continue
            if rid is not None:
                self.by_id.setdefault(rid, answer.strip())
            key = problem_key(problem)
            if key is not None:
                self.by_problem.setdefault(key, answer.strip())

    def __len__(self) -> int:
        return max(len(self.by_id), len(self.by_problem))

    def lookup(self, raw_id: str | None, problem: str | None) -> str | None:
        if self.spec.match in ("auto", "id") and raw_id is not None:
            hit = self.by_id.get(raw_id)
            if hit is not None:
                return hit
        if self.spec.match in ("auto", "problem") and problem is not None:
            return self.by_problem.get(problem_key(problem))
        return None


class Resolver:
    """The per-row part of the resolution: given, extracted, joined (None: left for majority / self)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.order = spec.reference_sources
        self.problems = ProblemsTable(spec.problems) if spec.problems is not None and JOINED in self.order else None

    def inline(self, row) -> tuple[str, str] | None:
        if GIVEN in self.order:
            ref = given_reference(row)
            if ref is not None:
                return ref
        if EXTRACTED in self.order:
            ref = extracted_reference(row)
            if ref is not None:
                return ref
        if self.problems is not None:
            hit = self.problems.lookup(row.raw_id, row.problem)
            if hit is not None:
                return hit, JOINED
        return None


# --------------------------------------------------------------------------------------------- majority / self


def own_answer(final_response: str | None, thinking: str | None) -> tuple[str, str] | None:
    """``(answer, kind)``: the trace's own final answer (its final response first, else the end of its thinking)."""
    from ..answers import extract_final_answer

    weak = None
    for text in (final_response, thinking[-OWN_ANSWER_TAIL_CHARS:] if thinking else None):
        if text and text.strip():
            m = extract_final_answer(text)
            if m is None or not m.text.strip():
                continue
            if m.kind in STRONG_KINDS:
                return m.text.strip(), m.kind
            if weak is None and _ALNUM_RE.search(m.text):
                weak = (m.text.strip(), m.kind)  # a last line: only if no answer statement is found anywhere
    return weak


class MajorityVotes:
    """Final answers of the generations still without a reference, per normalized problem.

    Memory: one entry per distinct pending problem holding its generations' answers (short strings), never the
    traces. :meth:`winners` groups each problem's answers by the answer checker's equivalence."""

    def __init__(self, k: int = 2):
        self.k = max(2, int(k))
        self._votes: dict = {}  # key -> answer, or list of answers; 0 = generations without one
        self._winners: dict | None = None

    def __len__(self) -> int:
        return len(self._votes)

    def add(self, key, answer: str | None, kind: str | None) -> None:
        if key is None:
            return
        strong = answer if answer and kind in STRONG_KINDS else None
        cur = self._votes.get(key)
        if strong is None:
            if cur is None:
                self._votes[key] = 0
            return
        if cur is None or isinstance(cur, int):
            self._votes[key] = strong
        elif isinstance(cur, str):
            self._votes[key] = [cur, strong]
        else:
            cur.append(strong)

    def winners(self, checker=None) -> dict:
        """The majority answer per problem with at least ``k`` answered generations and a unique most common
        answer (shared by two or more); computed once."""
        if self._winners is not None:
            return self._winners
        if checker is None:
            from ..answers import AnswerChecker

            checker = AnswerChecker()
        out: dict = {}
        for key, votes in self._votes.items():
            if isinstance(votes, list) and len(votes) >= self.k:
                out[key] = majority_answer(votes, checker)
        self._votes.clear()
        self._winners = out
        return out


def majority_answer(answers: Iterable[str], checker) -> str | None:
    """The representative of the largest group of equivalent answers, if it is unique and holds two or more."""
    clusters: list[list] = []  # [representative, count]
    for a in answers:
        for c in clusters:
            if c[0] == a:
                c[1] += 1
                break
        else:
            for c in clusters:
                try:
                    v = checker.compare(c[0], a)
                except Exception:  # the checker is time-boxed; anything else is "cannot tell"
                    v = None
                if v is not None and v.equivalent is True:
                    c[1] += 1
                    break
            else:
                clusters.append([a, 1])
    if not clusters:
        return None
    clusters.sort(key=lambda c: -c[1])
    top = clusters[0]
    if top[1] < 2 or (len(clusters) > 1 and clusters[1][1] == top[1]):
        return None
    return top[0]


def resolve_pending(own: tuple[str, str] | None, winner: str | None, spec: SourceSpec) -> tuple[str, str]:
    """``(answer, source)`` for a trace without a per-row reference; raises ``no_reference`` when there is none."""
    order = spec.reference_sources
    if winner is not None and MAJORITY in order:
        return winner, MAJORITY
    if own is None:
        raise RecordError(
            RejectReason.NO_REFERENCE,
            "no reference answer: no answer field, worked solution, joined problem or majority, and the trace "
            "states no final answer",
            "reference_answer",
        )
    if spec.require_reference or SELF not in order:
        why = "require_reference is set" if spec.require_reference else "`self` is not among reference_sources"
        raise RecordError(
            RejectReason.NO_REFERENCE,
            f"only the trace's own final answer {own[0][:80]!r} could serve as reference, and {why}",
            "reference_answer",
        )
    return own[0], SELF
