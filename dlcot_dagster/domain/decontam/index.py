"""The benchmark index and the matcher: does a training problem carry a benchmark problem?

A training problem matches a benchmark problem when, after :mod:`.normalize`,

1. **exact**: the two token sequences are equal; or
2. **n-gram overlap**: at least ``threshold`` of the benchmark problem's *distinctive* word n-grams (``ngram``
   tokens each) occur in the training problem, and at least ``min_shared`` of them. Distinctive = not boilerplate:
   an n-gram found in ``boilerplate_min_df`` or more distinct benchmark problems ("m and n are relatively prime
   positive integers find m + n") or, when a corpus is given, in many distinct problems of the corpus itself
   (:meth:`BenchmarkIndex.learn_corpus_boilerplate`) says nothing about which problem it came from. The share is
   taken of the *benchmark* problem, so wrappers, extra sentences or a whole problem set around it do not dilute
   it; or
3. **contained**: a benchmark problem shorter than ``ngram`` tokens (``Compute \\binom{8}{4}.``), of at least
   ``min_short_tokens`` tokens, occurs as a contiguous token run in the training problem;

and, in every case, **the numbers agree**: every number of the benchmark problem occurs in the training problem (a
problem with the same wording and other numbers is a different problem). The matcher returns the best match
(exact first, then the highest share) with its evidence: the normalized text, or the shared n-grams.

N-grams are 64-bit polynomial hashes of the tokens' string hashes, which Python salts per process: every process
builds its own index, and what travels between processes (the learned corpus boilerplate) is n-gram text.
The index is numpy arrays (sorted n-gram hashes, postings in CSR form): a few MB for the ~2.9k problems of the
seven usual benchmarks. Nothing here imports dagster.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Iterable, Sequence

import numpy as np

from .normalize import numbers, numbers_contained, tokens

_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial n-gram hash


def token_hashes(toks: Sequence[str]) -> np.ndarray:
    """One uint64 per token: Python's string hash (cached on the string, salted per process; n-gram hashes are
    never compared across processes: what travels is n-gram text, see :meth:`BenchmarkIndex.learn_corpus_boilerplate`)."""
    return np.fromiter(map(hash, toks), dtype=np.int64, count=len(toks)).view(np.uint64)


def window_hashes(t: np.ndarray, n: int) -> np.ndarray:
    """One uint64 per window of ``n`` consecutive token hashes (empty when there are fewer than ``n``)."""
    m = len(t) - n + 1
    if m <= 0 or n <= 0:
        return np.empty(0, dtype=np.uint64)
    h = t[:m].copy()
    for j in range(1, n):  # uint64 array arithmetic wraps silently (mod 2^64)
        h *= _P
        h += t[j : j + m]
    return h


def ngram_hashes(toks: Sequence[str], n: int) -> np.ndarray:
    return window_hashes(token_hashes(toks), n)


def text_key(toks: Sequence[str]) -> int:
    """64-bit key of a normalized problem (the whole token sequence)."""
    return int.from_bytes(blake2b(" ".join(toks).encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class DecontamSettings:
    """The matcher's knobs (defaults tuned on half of the benchmarks; see bench/bench_decontam.py)."""

    ngram: int = 6  # tokens per n-gram
    threshold: float = 0.5  # share of the benchmark problem's distinctive n-grams found in the training problem
    min_shared: int = 2  # and at least this many distinctive n-grams shared
    boilerplate_min_df: int = 3  # an n-gram in >= this many distinct benchmark problems is boilerplate
    corpus_min_df: int = 20  # corpus boilerplate: an n-gram in >= max(corpus_min_df,
    corpus_min_share: float = 0.01  # corpus_min_share x distinct problems) distinct problems of the corpus sample
    min_short_tokens: int = 4  # a benchmark problem shorter than ngram matches by containment from this length
    # (from 3 tokens when one of them is a number: "simplify sqrt 242")


@dataclass(frozen=True)
class BenchmarkProblem:
    benchmark: str
    id: str
    problem: str


@dataclass
class Overlap:
    """A training problem found in a benchmark: which problem, how, and the evidence."""

    benchmark: str
    benchmark_id: str
    kind: str  # exact | ngram | contained
    score: float  # share of the benchmark problem's distinctive n-grams found (1.0 for exact / contained)
    shared: int  # distinctive n-grams shared (0 for exact / contained)
    distinctive: int  # distinctive n-grams of the benchmark problem
    evidence: list[str] = field(default_factory=list)  # shared n-grams, or the normalized text
    benchmark_problem: str = ""

    def as_dict(self) -> dict:
        return {
            "benchmark": self.benchmark, "benchmark_id": self.benchmark_id, "kind": self.kind,
            "score": round(self.score, 4), "shared": self.shared, "distinctive": self.distinctive,
            "evidence": list(self.evidence),
        }


_KIND_RANK = {"exact": 0, "contained": 1, "ngram": 2}
MAX_EVIDENCE = 8


class BenchmarkIndex:
    """Every listed benchmark problem, normalized and indexed for :meth:`match`."""

    def __init__(self, problems: Sequence[BenchmarkProblem], settings: DecontamSettings | None = None):
        self.settings = s = settings or DecontamSettings()
        if s.ngram < 2:
            raise ValueError(f"decontam ngram must be >= 2, got {s.ngram}")
        self.problems = list(problems)
        self._tokens = [tokens(p.problem) for p in self.problems]
        self._numbers = [numbers(t) for t in self._tokens]
        self.exact: dict[str, list[int]] = {}
        for i, t in enumerate(self._tokens):
            if t:
                self.exact.setdefault(" ".join(t), []).append(i)
        n = s.ngram
        # contained: short problems by length -> sorted hashes of the whole sequence, and their problems
        short: dict[int, dict[int, list[int]]] = {}
        for i, t in enumerate(self._tokens):
            if len(t) < n and (len(t) >= s.min_short_tokens or (len(t) >= 3 and self._numbers[i])):
                h = int(ngram_hashes(t, len(t))[0])
                short.setdefault(len(t), {}).setdefault(h, []).append(i)
        self._short = {m: (np.array(sorted(d), dtype=np.uint64), [d[k] for k in sorted(d)]) for m, d in short.items()}
        # few short problems (the usual benchmarks have < 10): a substring test on the joined tokens is cheaper
        n_short = sum(len(v) for d in short.values() for v in d.values())
        self._short_texts = (
            [(f" {' '.join(self._tokens[i])} ", i) for d in short.values() for v in d.values() for i in v]
            if n_short <= 64 else None
        )
        # n-grams: distinct per problem, postings in CSR form
        per_problem = [np.unique(ngram_hashes(t, n)) for t in self._tokens]
        all_h = np.concatenate(per_problem) if per_problem else np.empty(0, dtype=np.uint64)
        all_p = np.repeat(np.arange(len(per_problem), dtype=np.int32), [len(g) for g in per_problem])
        order = np.argsort(all_h, kind="stable")
        all_h, all_p = all_h[order], all_p[order]
        self.gram_hash, starts = np.unique(all_h, return_index=True)
        self.post_ptr = np.append(starts, len(all_h)).astype(np.int64)
        self.post_prob = all_p
        # document frequency over *unrelated* problems: problems that share most of their n-grams (the same problem
        # in two benchmarks, Minerva's chained sub-problems) form one group and count once
        self.group = _related_groups(self.post_ptr, self.post_prob, [len(g) for g in per_problem], len(self.problems))
        self.bench_df = _group_df(self.post_ptr, self.group[self.post_prob]) if len(all_h) else np.empty(0, dtype=np.int32)
        self.boiler_bench = self.bench_df >= s.boilerplate_min_df
        self.boiler = self.boiler_bench.copy()
        self.corpus_boilerplate: list[str] = []
        self._recount()

    # ------------------------------------------------------------------ boilerplate
    def _recount(self) -> None:
        """Distinctive (non-boilerplate) n-grams per problem. A problem with none left (all its phrasing is
        boilerplate) can still match by containment of its whole text."""
        if len(self.gram_hash):
            keep = ~self.boiler[np.repeat(np.arange(len(self.gram_hash)), np.diff(self.post_ptr))]
        else:
            keep = np.empty(0, dtype=bool)
        self.distinctive = np.bincount(self.post_prob[keep], minlength=len(self.problems)).astype(np.int32)
        n = self.settings.ngram
        self._all_boilerplate = [
            (f" {' '.join(t)} ", i) for i, t in enumerate(self._tokens) if len(t) >= n and self.distinctive[i] == 0
        ]

    def _positions(self, hashes: np.ndarray) -> np.ndarray:
        """Index positions of the given n-gram hashes that are in the index."""
        if len(hashes) == 0 or len(self.gram_hash) == 0:
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.gram_hash, hashes)
        pos[pos >= len(self.gram_hash)] = 0
        return pos[self.gram_hash[pos] == hashes]

    def learn_corpus_boilerplate(self, problems: Iterable[str]) -> list[str]:
        """The index n-grams (as text) that many distinct problems of ``problems`` share (``corpus_min_df`` /
        ``corpus_min_share``): phrasing common to the corpus, not evidence of a particular benchmark problem.
        Problems with the same normalized text count once, so repeated copies of one benchmark problem never make
        its n-grams boilerplate. Only n-grams present in the index are counted: memory is bounded by the index
        (plus one 8-byte key per distinct problem of the sample)."""
        s = self.settings
        counts = np.zeros(len(self.gram_hash), dtype=np.int32)
        seen: set[int] = set()
        for text in problems:
            toks = tokens(text)
            key = text_key(toks)
            if key in seen:
                continue
            seen.add(key)
            pos = np.unique(self._positions(ngram_hashes(toks, s.ngram)))
            counts[pos] += 1
        cut = max(s.corpus_min_df, int(np.ceil(s.corpus_min_share * len(seen))))
        return sorted(self._gram_text(int(g)) for g in np.flatnonzero(counts >= cut))

    def _gram_text(self, g: int) -> str:
        """The text of index n-gram ``g`` (from the first benchmark problem that has it)."""
        n = self.settings.ngram
        t = self._tokens[int(self.post_prob[self.post_ptr[g]])]
        j = int(np.flatnonzero(ngram_hashes(t, n) == self.gram_hash[g])[0])
        return " ".join(t[j : j + n])

    def with_corpus_boilerplate(self, grams: Iterable[str]) -> "BenchmarkIndex":
        """A copy of this index (sharing its arrays) where these n-grams (text, as
        :meth:`learn_corpus_boilerplate` returns them) are boilerplate too."""
        n = self.settings.ngram
        texts = sorted(set(grams))
        hashes = np.array([int(ngram_hashes(t.split(" "), n)[0]) for t in texts if len(t.split(" ")) == n], dtype=np.uint64)
        out = copy.copy(self)
        out.corpus_boilerplate = texts
        out.boiler = self.boiler_bench.copy()
        out.boiler[self._positions(hashes)] = True
        out._recount()
        return out

    def boilerplate_ngrams(self, limit: int = 50) -> list[tuple[str, int]]:
        """The most frequent boilerplate n-grams as text, with their benchmark document frequency (for reports)."""
        n = self.settings.ngram
        idx = np.flatnonzero(self.boiler)
        idx = idx[np.argsort(-self.bench_df[idx], kind="stable")][:limit]
        out = []
        for g in idx:
            p = int(self.post_prob[self.post_ptr[g]])
            t = self._tokens[p]
            out.append((self._gram_text(int(g)), int(self.bench_df[g])))
        return out

    # ------------------------------------------------------------------ matching
    def problem_tokens(self, i: int) -> list[str]:
        return self._tokens[i]

    def _numbers_agree(self, i: int, nums) -> bool:
        return numbers_contained(self._numbers[i], nums)

    def match(self, text: str) -> Overlap | None:
        return self.match_tokens(tokens(text))

    def match_tokens(self, toks: list[str]) -> Overlap | None:
        if not toks:
            return None
        s = self.settings
        joined = " ".join(toks)
        exact = self.exact.get(joined)
        if exact:
            return self._overlap((None, exact[0], "exact", 1.0, 0), toks, None)
        best: tuple | None = None
        nums = None
        t = token_hashes(toks)
        padded = f" {joined} "
        contained = [i for text, i in self._all_boilerplate if text in padded]
        if self._short_texts is not None:
            contained += [i for text, i in self._short_texts if text in padded]
        else:
            for m, (hashes, owners) in self._short.items():
                if m > len(toks):
                    continue
                h = window_hashes(t, m)
                pos = np.searchsorted(hashes, h)
                pos[pos >= len(hashes)] = 0
                for k in pos[hashes[pos] == h].tolist():
                    contained += owners[k]
        for i in sorted(set(contained)):
            nums = nums if nums is not None else numbers(toks)
            key = (_KIND_RANK["contained"], -1.0, 0, i)
            if (best is None or key < best[0]) and self._numbers_agree(i, nums):
                best = (key, i, "contained", 1.0, 0)
        grams = window_hashes(t, s.ngram)
        if len(grams) and len(self.gram_hash):
            pos = np.searchsorted(self.gram_hash, grams)
            pos[pos >= len(self.gram_hash)] = 0
            hit = pos[(self.gram_hash[pos] == grams)]
            if len(hit):
                hit = np.unique(hit)
                hit = hit[~self.boiler[hit]]
            if len(hit):
                ptr, post = self.post_ptr, self.post_prob
                if len(hit) == 1:
                    probs = post[ptr[hit[0]] : ptr[hit[0] + 1]]
                else:
                    probs = np.concatenate([post[a:b] for a, b in zip(ptr[hit].tolist(), ptr[hit + 1].tolist())])
                uniq, counts = np.unique(probs, return_counts=True)
                d = self.distinctive[uniq]
                ok = (d > 0) & (counts >= np.minimum(s.min_shared, d)) & (counts >= s.threshold * d)
                for i, c in zip(uniq[ok].tolist(), counts[ok].tolist()):
                    score = min(1.0, c / int(self.distinctive[i]))
                    key = (_KIND_RANK["ngram"], -score, -c, i)  # ties: the problem with more shared n-grams
                    if best is not None and key >= best[0]:
                        continue
                    nums = nums if nums is not None else numbers(toks)
                    if self._numbers_agree(i, nums):
                        best = (key, i, "ngram", float(score), int(c))
        if best is None:
            return None
        return self._overlap(best, toks, grams)

    def _overlap(self, best: tuple, toks: list[str], grams: np.ndarray | None) -> Overlap:
        _, i, kind, score, shared = best
        p = self.problems[i]
        if kind == "ngram":
            n, G = self.settings.ngram, len(self.gram_hash)
            pos = np.searchsorted(self.gram_hash, grams)
            pos[pos >= G] = 0
            valid = (self.gram_hash[pos] == grams) & ~self.boiler[pos]
            evidence: list[str] = []
            for j in np.flatnonzero(valid).tolist():
                g = int(pos[j])
                if i not in self.post_prob[self.post_ptr[g] : self.post_ptr[g + 1]]:
                    continue
                text = " ".join(toks[j : j + n])
                if text not in evidence:
                    evidence.append(text)
                if len(evidence) >= MAX_EVIDENCE:
                    break
        else:
            evidence = [" ".join(self._tokens[i])[:500]]
        return Overlap(
            benchmark=p.benchmark, benchmark_id=p.id, kind=kind, score=score, shared=shared,
            distinctive=int(self.distinctive[i]), evidence=evidence, benchmark_problem=p.problem,
        )

    def __len__(self) -> int:
        return len(self.problems)

    def stats(self) -> dict:
        return {
            "problems": len(self.problems),
            "ngrams": int(len(self.gram_hash)),
            "boilerplate_benchmark": int(self.boiler_bench.sum()),
            "boilerplate_corpus": int(len(self.corpus_boilerplate)),
            "short_problems": int(sum(len(o) for _, o in self._short.values())),
            "nbytes": int(self.gram_hash.nbytes + self.post_ptr.nbytes + self.post_prob.nbytes + self.bench_df.nbytes),
        }


def _related_groups(ptr: np.ndarray, prob: np.ndarray, sizes: list[int], n_problems: int,
                    share: float = 0.7, max_df: int = 64) -> np.ndarray:
    """Group id per problem: union of problems sharing at least ``share`` of the smaller one's n-grams (counted
    over n-grams found in at most ``max_df`` problems; commoner ones are boilerplate whatever the grouping)."""
    from collections import Counter

    pairs: Counter = Counter()
    for g in np.flatnonzero((np.diff(ptr) >= 2) & (np.diff(ptr) <= max_df)).tolist():
        ps = sorted(set(prob[ptr[g] : ptr[g + 1]].tolist()))
        for a in range(len(ps)):
            for b in range(a + 1, len(ps)):
                pairs[(ps[a], ps[b])] += 1
    parent = list(range(n_problems))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (a, b), k in pairs.items():
        if k >= share * max(1, min(sizes[a], sizes[b])):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n_problems)], dtype=np.int32)


def _group_df(ptr: np.ndarray, groups_of_postings: np.ndarray) -> np.ndarray:
    """Distinct groups per n-gram (postings of one n-gram are contiguous between ptr[g] and ptr[g + 1])."""
    g_idx = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    pairs = np.unique(np.stack([g_idx, groups_of_postings.astype(np.int64)], axis=1), axis=0)
    return np.bincount(pairs[:, 0], minlength=len(ptr) - 1).astype(np.int32)
