"""Correction of intermediate error states and reassembly of the kept text.

Input: a pruned :class:`SegmentedTrace` (segments with ``kept``). Output: a
:class:`Rewrite` with the corrected thinking, the kept spans, the removed
spans (each with a reason) and the edit list.

Fidelity contract
-----------------
``corrected_thinking`` is exactly: for each kept span, in order, the
original characters of that span with the listed edits applied; spans are
concatenated as they are. Every edit lies inside one kept span (an insertion
may sit at the span's end), replaces the original characters
``removed = thinking[pos:pos+len(removed)]`` by ``inserted``, and is short:

* ``dangling_connective``: "Wait, s" → "S" at a join (connective dropped, the
  next word capitalized when it is a lowercase word);
* ``back_reference``: an "as before" style phrase dropped from a long
  sentence right after a join;
* ``join_separator``: one space or newline inserted where two kept spans would
  otherwise touch without whitespace (never more characters than the gap
  removed there).

So every character of the output comes from the original trace except the
inserted text of edits, and the output is never longer than the original.

Steps
-----
1. **Retractions** (``remove_retractions``) inside kept solutions/checks: a
   sentence that opens with a clear error admission ("that's wrong", "I made
   a mistake", "my mistake", "I miscalculated", "oops", "scratch that" ...;
   not hedged: "maybe I made a mistake?" is a doubt; reasoning by
   contradiction such as "that can't be right" is left alone) is removed
   with the sentence right before it (unless the admission points further
   back: "I made a mistake earlier"; and never when the sentence is a
   question) (the retracted claim, at most 400
   characters, never an answer statement of a correct segment, never a
   sentence holding display-math delimiters). When the retraction sentence
   itself carries the corrected computation ("Wait, no, 18 × 1.5 = 27.")
   only its retraction clause goes and the computation stays. The bare "Wait,
   no" / "No, wait" of R1 traces is *not* used by default
   (``weak_retractions``): on the LIMO traces it is followed by a
   confirmation of the previous sentence about as often as by a correction,
   and removing a correct step is worse than keeping a corrected one.
2. **Contradicted values**: "Actually, x = 7" / "x should be 7" removes the
   sentence right before it when that sentence assigned a different number
   to the same left-hand side; "x = 7, not 5" removes the sentence among the
   3 before it that stated ``x = 5``. (Re-assignments without such a marker
   are left alone: a loop variable takes many values legitimately.)
3. **Joins** (``fix_joins``), repeated until stable, at every place where
   something was removed:
   * a trailing announcement ("Let me verify this.", "Let me check:") right
     before a dropped segment is removed (``dangling_announcement``): what it
     announced was in that segment;
   * a sentence right after the gap (first 2 sentences) that refers to removed
     text ("same as before", "the previous approach", "my earlier mistake",
     "that matches", "both methods" ...) is removed when it is at most 200
     characters and carries no math (``back_reference``); otherwise only an
     "as before" phrase is edited out;
   * a leading connective ("Wait,", "But wait,", "Alternatively,", "Hmm,",
     "But", "Actually,", "Yes,") is dropped and the next word capitalized.
4. Leading/trailing whitespace of the whole text is trimmed
   (``trim_whitespace``).
"""

from __future__ import annotations

import bisect
import re
import string
from dataclasses import dataclass, field

from .error_states import error_state_edits
from .policy import CorrectorConfig, DLCoTPolicy
from .text import (
    ANNOUNCE_RE,
    BACKREF_RE,
    DANGLING_BARE_RE,
    DANGLING_RE,
    RETRACT_LEAD_RE,
    RETRACT_RE,
    WEAK_RETRACT_RE,
    lower_case_twin,
    sentence_spans,
)
from .types import Edit, Label, SegmentedTrace, SegmentKind, Span

_BODY = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)
_CORRECTION_REASONS = ("retract", "contradicted_by", "back_reference", "dangling_", "trim_whitespace")
_WS = " \t\r\n\u2028\u2029\u00a0"
_MATHY = re.compile(r"\d|=|\\[a-zA-Z]+|[<>≤≥×÷^]")
_DISPLAY_DELIM = re.compile(r"\\\[|\\\]|\$\$|```")
_AS_BEFORE_RE = re.compile(
    r",?\s*\bas (?:i |we )?(?:did|found|computed|calculated|showed|shown|established|derived|got|saw|noted|"
    r"mentioned|said|had|obtained|determined)?\s*(?:it )?(?:before|earlier|above|previously)\b,?",
    re.IGNORECASE,
)
_CORRECTION_MARK_RE = re.compile(r"\b(?:actually|correction|should be|should have been|not)\b", re.IGNORECASE)
_LHS = r"(?P<lhs>[A-Za-z](?:_\{?\w+\}?|\w{0,12})(?:\([^()=]{0,20}\))?)"
_NUM = r"-?\d+(?:\.\d+)?"
# "x = 7, not 5" / "x is 7, not 5"
_NOT_OLD_RE = re.compile(_LHS + r"\s*(?:=|is|equals)\s*(?P<new>" + _NUM + r")\s*,?\s*(?:and\s+)?not\s+(?P<old>" + _NUM + r")\b")
# "Actually, x = 7" / "x should be 7" (the marker is attached to the assignment)
_MARKED_ASSIGN_RE = re.compile(
    r"(?:\bactually,?\s+|\bcorrection:\s*)" + _LHS + r"\s*(?:=|is|equals)\s*(?P<new>" + _NUM + r")(?![\d.]*\s*[*/^+×÷-]\s*\d)"
    r"|" + _LHS.replace("lhs", "lhs2") + r"\s+should (?:be|have been)\s+(?P<new2>" + _NUM + r")\b",
    re.IGNORECASE,
)
_ASSIGN_RE = re.compile(
    r"(?<![\w\\])([A-Za-z](?:_\{?\w+\}?|\w{0,12})(?:\([^()=]{0,20}\))?)\s*=\s*(-?\d+(?:\.\d+)?)(?![\d.]*\s*[*/^+×÷-]\s*\d)"
)
_RETRACT_TAIL_SKIP_RE = re.compile(
    r"[\s,.;:!—–\-…)*]*(?:(?:so|let me (?:correct|fix|redo|recompute|recalculate|re-?check)(?: (?:that|this|it))?|"
    r"let's (?:correct|fix|redo)(?: (?:that|this|it))?|actually|in fact|the correct (?:value|one|result) is|it should be|"
    r"it's|it is|instead)[\s,.;:!—–\-…]*)*",
    re.IGNORECASE,
)
# "perhaps I miscounted", "maybe I made a mistake", "Is there a mistake?": a doubt, not an admission
_HEDGED_RETRACT_RE = re.compile(r"\b(?:maybe|perhaps|might|may|if|whether|possibly|probably|could)\b|\?", re.IGNORECASE)
_EARLIER_RE = re.compile(r"\b(?:earlier|before|previously|above|at first|initially|in (?:the|my) (?:first|previous))\b",
                         re.IGNORECASE)
_LOWER_WORD_RE = re.compile(r"[a-z][a-z']+\b")

# Prefilters (see _candidate_sentences): a NECESSARY condition for an exact per-sentence pattern, looked for once in a
# whole piece instead of once per sentence; the exact pattern then runs on the candidate sentences only. They work
# on the case-folded text (_fold): the re docs say IGNORECASE equates ASCII letters only with their capitals and
# "İ", "ı", "ſ", "K"; all map to the ASCII letter, length kept, so every IGNORECASE match of an ASCII lower-case
# pattern in the text is a case-sensitive match at the same place in the folded text (\b too: letters stay letters).
_FOLD = str.maketrans(string.ascii_uppercase + "\u0130\u0131\u017f\u212a", string.ascii_lowercase + "iisk")

# Every RETRACT_RE match holds one of these words (no \b or look-around: found wherever they lie in a sentence) ...
_RETRACT_WORDS = (
    "wrong", "not right", "not correct", "incorrect", "correction:", "mis", "error", "typo", "slip", "my bad",
    "messed up", "oops", "scratch that", "strike that",
)
# ... and every WEAK_RETRACT_RE match holds "wait"
_RETRACT_OR_WEAK_WORDS = (*_RETRACT_WORDS, "wait")
# _CORRECTION_MARK_RE, case-sensitive, for the folded text
_CORRECTION_MARK_FOLDED_RE = lower_case_twin(_CORRECTION_MARK_RE)


def _fold(text: str) -> str:
    """``text`` with the letters IGNORECASE equates with an ASCII letter replaced by it (same length, see _FOLD)."""
    low = text.lower()  # maps "K" to "k"; changes the length only for "İ" (its lower case is two characters)
    if len(low) != len(text) or "\u0131" in low or "\u017f" in low:
        return text.translate(_FOLD)  # slower on non-ASCII text, rarely needed
    return low


def _word_hits(folded: str, words: tuple[str, ...], a: int, b: int) -> list[tuple[int, int]]:
    """Spans of all occurrences of ``words`` inside ``folded[a:b]``."""
    out = []
    for w in words:
        k = folded.find(w, a, b)
        while k >= 0:
            out.append((k, k + len(w)))
            k = folded.find(w, k + 1, b)
    return out


def _candidate_sentences(hits: list[tuple[int, int]], sents: list[tuple[int, int]], window: int | None = None) -> list[int]:
    """Indices of the sentences of ``sents`` (the spans of one piece) that a prefilter hit overlaps.

    A sentence is a candidate when a span of ``hits`` overlaps its first ``window`` characters (the whole sentence
    when None); the first and the last sentence of the piece are always candidates (there, ``\b`` or ``^`` of a
    per-sentence pattern may see the sentence edge differently from the whole text: inside a piece, every sentence
    but the last ends with whitespace). ``hits`` must overlap every occurrence of the condition they stand for: all
    occurrences, or the matches of a finditer (which reports a match at an occurrence's start or one that started
    earlier and runs into it).
    """
    starts = [sa for sa, _sb in sents]
    last = len(sents) - 1
    out = {0, last}
    for hs, he in hits:
        i = max(0, bisect.bisect_right(starts, hs) - 1)
        while i <= last and sents[i][0] < he:
            sa, sb = sents[i]
            if hs < (sb if window is None else min(sb, sa + window)):
                out.add(i)
            i += 1
    return sorted(out)


@dataclass
class Rewrite:
    corrected_thinking: str
    kept_spans: list[Span]
    removed_spans: list[Span]
    edits: list[Edit]
    protected: list[tuple[int, int]] = field(default_factory=list)


class _State:
    """Kept intervals of the original text plus the removal log."""

    def __init__(self, text: str, kept: list[tuple[int, int]], removed: list[Span], protected: list[tuple[int, int]]):
        self.text = text
        self.kept = [list(k) for k in kept]
        self.removed = list(removed)
        self.protected = sorted(protected)
        self._folded: str | None = None

    def folded(self) -> str:
        """``_fold(text)``, computed once."""
        if self._folded is None:
            self._folded = _fold(self.text)
        return self._folded

    def is_protected(self, a: int, b: int) -> bool:
        return any(pa < b and a < pb for pa, pb in self.protected)

    def remove(self, a: int, b: int, reason: str) -> bool:
        if b <= a or self.is_protected(a, b):
            return False
        new: list[list[int]] = []
        changed = False
        for ka, kb in self.kept:
            if kb <= a or ka >= b:
                new.append([ka, kb])
                continue
            lo, hi = max(ka, a), min(kb, b)
            self.removed.append(Span(start=lo, end=hi, reason=reason))
            changed = True
            if ka < lo:
                new.append([ka, lo])
            if hi < kb:
                new.append([hi, kb])
        self.kept = new
        return changed

    def segment_drop_at(self, pos: int) -> bool:
        """Whether a whole dropped segment starts at ``pos`` (possibly after trimmed whitespace)."""
        return any(
            sp.start == pos and sp.reason and not sp.reason.startswith(_CORRECTION_REASONS) for sp in self.removed
        )

    def pieces(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in self.kept]


def _segment_lookup(trace: SegmentedTrace):
    starts = [sg.start for sg in trace.segments]

    def seg_at(pos: int):
        i = bisect.bisect_right(starts, pos) - 1
        return trace.segments[max(0, i)]

    return seg_at


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _protected_spans(trace: SegmentedTrace) -> list[tuple[int, int]]:
    prot = []
    for sg in trace.segments:
        if not sg.kept or sg.answer is None or sg.answer_inherited and sg.kind is not SegmentKind.CONCLUSION:
            continue
        if sg.kind is SegmentKind.CONCLUSION or sg.label is Label.CORRECT:
            prot.append((sg.answer.start, sg.answer.end))
    return prot


# ---------------------------------------------------------------------- step 1+2


def _retractions(st: _State, trace: SegmentedTrace, cfg: CorrectorConfig) -> None:
    text = st.text
    seg_at = _segment_lookup(trace)
    # only sentences holding a retraction word in their first 160 characters can match (see _RETRACT_WORDS)
    words = _RETRACT_OR_WEAK_WORDS if cfg.weak_retractions else _RETRACT_WORDS
    folded = st.folded()
    for pa, pb in st.pieces():
        sents = sentence_spans(text, pa, pb)
        if not sents:
            continue
        done_upto = pa
        for i in _candidate_sentences(_word_hits(folded, words, pa, pb), sents, 160):
            sa, sb = sents[i]
            if sa < done_upto:
                continue
            seg = seg_at(sa)
            if seg.kind not in _BODY:
                continue
            sent = text[sa:sb]
            m = RETRACT_RE.search(sent, 0, min(len(sent), 160))
            if m is None and cfg.weak_retractions:
                m = WEAK_RETRACT_RE.search(sent, 0, min(len(sent), 160))
            if m is None or _HEDGED_RETRACT_RE.search(sent, 0, m.end()) or sent.rstrip(" \t\r\n\"')*_").endswith("?"):
                continue
            # only a retraction that opens its sentence retracts the sentence before
            # ("..., as per the question—wait, no, divided by 100." retracts its own clause: left alone)
            if not RETRACT_LEAD_RE.fullmatch(sent, 0, m.start()):
                continue
            # the retracted claim: the sentence before, same piece, same segment kind
            # ("I made a mistake earlier" points further back: only the admission goes)
            if i > 0 and not _EARLIER_RE.search(sent):
                qa, qb = sents[i - 1]
                prev = text[qa:qb]
                if (
                    qa >= done_upto
                    and seg_at(qa).kind in _BODY
                    and len(prev.strip()) <= cfg.max_retracted_chars
                    and not _DISPLAY_DELIM.search(prev)
                    and not RETRACT_RE.search(prev)
                    and not prev.rstrip().endswith(":")
                ):
                    st.remove(qa, qb, f"retracted_by:{sa}")
            # the retraction itself
            tail = _RETRACT_TAIL_SKIP_RE.match(sent, m.end())
            cut = tail.end() if tail else m.end()
            rest = sent[cut:]
            if _MATHY.search(rest) and len(rest.strip()) >= 6 and len(sent) <= 2 * cfg.max_retraction_sentence_chars:
                st.remove(sa, sa + cut, "retraction")
            elif len(sent.strip()) <= cfg.max_retraction_sentence_chars or not _MATHY.search(rest):
                st.remove(sa, sb, "retraction")
            else:
                st.remove(sa, sa + cut, "retraction")
            done_upto = sb


def _contradictions(st: _State, trace: SegmentedTrace, cfg: CorrectorConfig) -> None:
    text = st.text
    folded = st.folded()
    seg_at = _segment_lookup(trace)
    for pa, pb in st.pieces():
        sents = sentence_spans(text, pa, pb)
        if not sents:
            continue
        # a sentence without a whole-text marker match cannot match on its own, except at the piece's edges (\b):
        # see _candidate_sentences; the exact test below runs on the candidates
        hits = [m.span() for m in _CORRECTION_MARK_FOLDED_RE.finditer(folded, pa, pb)]
        for i in _candidate_sentences(hits, sents):
            sa, sb = sents[i]
            sent = text[sa:sb]
            if seg_at(sa).kind not in _BODY or not _CORRECTION_MARK_RE.search(sent):
                continue
            # (lhs, new value, explicitly rejected old value or None, how far back to look)
            fixes = [(_norm_lhs(m.group("lhs")), m.group("new"), m.group("old"), 3) for m in _NOT_OLD_RE.finditer(sent)]
            fixes += [
                (_norm_lhs(m.group("lhs") or m.group("lhs2")), m.group("new") or m.group("new2"), None, 1)
                for m in _MARKED_ASSIGN_RE.finditer(sent)
            ]
            if not fixes:
                continue
            for j in range(i - 1, max(-1, i - 4), -1):
                qa, qb = sents[j]
                if seg_at(qa).kind not in _BODY:
                    break
                prev = text[qa:qb]
                if len(prev.strip()) > cfg.max_retracted_chars or _DISPLAY_DELIM.search(prev):
                    continue
                olds = {(_norm_lhs(m.group(1)), _num(m.group(2))) for m in _ASSIGN_RE.finditer(prev)}
                hit = any(
                    i - j <= back
                    and any(ol == lhs and ov != _num(new) and (old is None or ov == _num(old)) for ol, ov in olds)
                    for lhs, new, old, back in fixes
                )
                if hit:
                    st.remove(qa, qb, f"contradicted_by:{sa}")
                    break


def _norm_lhs(s: str) -> str:
    return re.sub(r"[\s{}]", "", s)


def _num(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return float("nan")


# ---------------------------------------------------------------------- step 3: joins


def _first_content(text: str, a: int, b: int) -> int:
    while a < b and text[a] in _WS:
        a += 1
    return a


def _join_starts(st: _State) -> list[int]:
    """Indices of pieces that start right after removed text (piece 0 too, if text before it was removed)."""
    out = []
    pieces = st.pieces()
    for k, (a, _b) in enumerate(pieces):
        if k > 0 or st.text[:a].strip(_WS):
            out.append(k)
    return out


def _fix_joins_structural(st: _State, cfg: CorrectorConfig) -> None:
    """Removals at joins: trailing announcements and back-reference sentences. Repeats until stable."""
    text = st.text
    for _round in range(8):
        changed = False
        pieces = st.pieces()
        # trailing announcement before a gap (also at the end of the text if something after it was removed)
        for k, (a, b) in enumerate(pieces):
            if not (k + 1 < len(pieces) or text[b:].strip(_WS)):
                continue
            sents = sentence_spans(text, a, b)
            if not sents:
                continue
            sa, sb = sents[-1]
            sent = text[sa:sb]
            if (
                len(sent.strip()) <= 150
                and ANNOUNCE_RE.match(sent)
                and not re.search(r"[\d=]", sent)
                and st.segment_drop_at(b)
            ):
                changed |= st.remove(sa, sb, "dangling_announcement")
        pieces = st.pieces()
        for k in _join_starts(st):
            a, b = pieces[k]
            f = _first_content(text, a, b)
            # a piece made only of connectives ("Wait, ") has nothing left to say
            m = DANGLING_RE.match(text, f, b)
            if (m and not text[m.end() : b].strip(_WS)) or not text[f:b].strip(_WS + ".,;:!-—…*"):
                changed |= st.remove(a, b, "dangling_connective")
                continue
            for sa, sb in sentence_spans(text, f, b)[: cfg.backref_window_sentences]:
                sent = text[sa:sb]
                if (
                    BACKREF_RE.search(sent)
                    and len(sent.strip()) <= cfg.max_backref_sentence_chars
                    and not _MATHY.search(sent)
                ):
                    if st.remove(sa, sb, "back_reference"):
                        changed = True
                        break
        if not changed:
            return


def _capitalizable(text: str, word: re.Match) -> bool:
    """A lowercase English word (not a variable or a function name such as ``sqrt(``)."""
    if len(word.group(0)) < 2:
        return False
    nxt = text[word.end() : word.end() + 1]
    return nxt not in ("(", "_", "^", "{", "[", "'")


def _edits_at_joins(st: _State, cfg: CorrectorConfig) -> list[Edit]:
    text = st.text
    edits: list[Edit] = []
    pieces = st.pieces()
    joins = set(_join_starts(st))
    for k, (a, b) in enumerate(pieces):
        if k not in joins:
            continue
        p = _first_content(text, a, b)
        cursor = p
        # leading connective(s)
        m = DANGLING_RE.match(text, p, b) or DANGLING_BARE_RE.match(text, p, b)
        q = m.end() if m else p
        while q < b and text[q] in _WS:
            q += 1
        if m and m.end() > p and q < b:
            nxt = _LOWER_WORD_RE.match(text, q, b)
            if nxt and _capitalizable(text, nxt):
                edits.append(Edit(pos=p, removed=text[p : q + 1], inserted=text[q].upper(), reason="dangling_connective"))
                cursor = q + 1
            else:
                edits.append(Edit(pos=p, removed=text[p:q], inserted="", reason="dangling_connective"))
                cursor = q
        else:
            nxt = _LOWER_WORD_RE.match(text, p, b)
            if nxt and _capitalizable(text, nxt):
                # a lowercase fragment left by a partial removal: capitalize it
                edits.append(Edit(pos=p, removed=text[p], inserted=text[p].upper(), reason="dangling_connective"))
                cursor = p + 1
        # "as before" phrase inside the first sentences
        for sa, sb in sentence_spans(text, cursor, b)[: cfg.backref_window_sentences]:
            ph = _AS_BEFORE_RE.search(text, sa, sb)
            if ph and ph.start() >= cursor and not st.is_protected(ph.start(), ph.end()):
                removed = text[ph.start() : ph.end()]
                # keep one separating space if the phrase sat between two words
                before = text[ph.start() - 1] if ph.start() > 0 else " "
                after = text[ph.end()] if ph.end() < len(text) else " "
                ins = " " if (before not in _WS and after not in _WS and after not in ".,;:!?") else ""
                if removed.startswith(",") and after in ".!?":
                    ins = ""
                edits.append(Edit(pos=ph.start(), removed=removed, inserted=ins, reason="back_reference"))
                break
        # separator between this piece and the previous one
        if k > 0:
            pa, pb = pieces[k - 1]
            if text[pb - 1] not in _WS and text[a] not in _WS:
                gap = text[pb:a]
                sep = "\n" if "\n" in gap else " "
                edits.append(Edit(pos=pb, removed="", inserted=sep, reason="join_separator"))
    return edits


# ---------------------------------------------------------------------- assembly


def apply_edits(text: str, kept: list[tuple[int, int]], edits: list[Edit]) -> str:
    """The corrected text: kept spans of ``text`` with ``edits`` applied (reference implementation)."""
    by_pos = sorted(edits, key=lambda e: (e.pos, len(e.removed) > 0))
    out: list[str] = []
    j = 0
    for a, b in kept:
        cur = a
        while j < len(by_pos) and by_pos[j].pos < a:
            j += 1
        while j < len(by_pos) and by_pos[j].pos <= b:
            e = by_pos[j]
            out.append(text[cur : e.pos])
            out.append(e.inserted)
            cur = e.pos + len(e.removed)
            j += 1
        out.append(text[cur:b])
    return "".join(out)


class RuleRewriter:
    """``Rewriter``: retraction removal, join repair, reassembly (see module docstring)."""

    def __init__(self, config: CorrectorConfig | None = None):
        self.config = config or CorrectorConfig()

    def rewrite(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> Rewrite:
        text = trace.record.thinking
        cfg = self.config
        kept = _merge([(sg.start, sg.end) for sg in trace.segments if sg.kept])
        removed = [Span(start=sg.start, end=sg.end, reason=sg.drop_reason) for sg in trace.segments if not sg.kept]
        st = _State(text, kept, removed, _protected_spans(trace))
        if policy.remove_retractions:
            _retractions(st, trace, cfg)
            _contradictions(st, trace, cfg)
        if policy.fix_joins:
            _fix_joins_structural(st, cfg)
        # trim the whole text
        pieces = st.pieces()
        if pieces:
            a0, b0 = pieces[0]
            f = _first_content(text, a0, b0)
            if f > a0:
                st.remove(a0, f, "trim_whitespace")
            pieces = st.pieces()
            a1, b1 = pieces[-1]
            e = b1
            while e > a1 and text[e - 1] in _WS:
                e -= 1
            if e < b1:
                st.remove(e, b1, "trim_whitespace")
        edits: list[Edit] = []
        if policy.fix_joins:
            edits = _edits_at_joins(st, cfg)
        else:
            # still never glue two words together
            pieces = st.pieces()
            for k in range(1, len(pieces)):
                pb, a = pieces[k - 1][1], pieces[k][0]
                if text[pb - 1] not in _WS and text[a] not in _WS:
                    edits.append(Edit(pos=pb, removed="", inserted=" ", reason="join_separator"))
        pieces = st.pieces()
        if policy.remove_error_states:
            busy = [(e.pos, e.pos + max(1, len(e.removed))) for e in edits]
            edits += error_state_edits(text, pieces, st.protected, busy)
        edits.sort(key=lambda e: (e.pos, len(e.removed) > 0))
        corrected = apply_edits(text, pieces, edits)
        removed_spans = sorted(st.removed, key=lambda s: (s.start, s.end))
        return Rewrite(
            corrected_thinking=corrected,
            kept_spans=[Span(start=a, end=b) for a, b in pieces],
            removed_spans=removed_spans,
            edits=edits,
            protected=st.protected,
        )
