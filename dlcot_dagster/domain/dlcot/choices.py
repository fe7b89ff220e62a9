"""Multiple-choice problems: the choices block of a problem, and the places where a thinking commits to a choice.

Choices block
-------------
:func:`parse_choices` reads the options of a problem written one per line (``A) $18$``, ``(B) 24``, ``C. text``,
``D: text``) or inline as in AMC problems (``\\textbf{(A) }18\\qquad\\textbf{(B) }24 ...``). It needs at least two
options with consecutive letters starting at A. :func:`problem_without_choices` is the problem text before the
block (the numbers in the options are not "numbers of the problem" for the implicit-answer finder).

Commitments
-----------
:func:`choice_commitments` finds the clauses of a thinking that commit to an option, by letter:

* the letter is named as an option: ``option B``, ``choice (C)``, ``(D)``, ``B)``, or a bare capital letter used as
  a subject (``D is correct``, ``So B.``), and only letters of the problem's options count;
* the clause holds a *positive* word about it (correct, right, answer, works, satisfies, matches, sufficient,
  possible, candidate, best, equivalent, supported, ``which is option D``, ``corresponds to``, ``that's``, ...);
* no *negative* word in the clause (not, n't, wrong, incorrect, out, eliminate, rule out, false, invalid, ...),
  no question mark in the sentence, no "if / maybe / suppose / check whether" before the letter.

Describing an option is not a commitment ("Option A is (x - 8)^2 + (y + 6)^2 = 25.": no positive word).

:func:`choice_content_commitments` finds sentences that state the *content* of an option without its letter: a
conclusive sentence ("So, ...", "Therefore ...", "... would be ...") that contains most (≥ 60 %) of the content
words of a text option. (Numeric options are found by the implicit-answer finder, which gets their values as
targets.) Every commitment's answer text is the option letter, so the labeller compares letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import sentence_spans
from .types import AnswerSpan

_LINE_OPT_RE = re.compile(r"^[ \t]*(?:\\textbf\{)?\(?([A-J])(?:\)|\.(?!\d)|:)\}?[ \t]*(\S.*?)[ \t]*$", re.MULTILINE)
_INLINE_OPT_RE = re.compile(r"(?:\\textbf\{|\\mathrm\{|\\text\{)?\s*\(([A-J])\)\s*\}?\s*")
_CHOICES_HEAD_RE = re.compile(r"^[ \t]*(?:answer )?(?:choices|options)[ \t]*:?[ \t]*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Choices:
    letters: tuple[str, ...]
    contents: dict[str, str]  # letter -> content (LaTeX/text, stripped of $ and \textbf)
    start: int  # offset of the block in the problem

    def content_value(self, letter: str) -> str:
        return self.contents.get(letter, "")


def _clean_content(s: str) -> str:
    s = re.sub(r"\\q?quad|\\textbf\{\s*\}|\\mathrm\{\s*\}", " ", s)
    s = s.strip().strip("$").strip()
    s = re.sub(r"^\\textbf\{\s*\}\s*", "", s)
    return " ".join(s.split())


def _consecutive(letters: list[str]) -> bool:
    return len(letters) >= 2 and letters[0] == "A" and all(ord(b) - ord(a) == 1 for a, b in zip(letters, letters[1:]))


def parse_choices(problem: str) -> Choices | None:
    """The options of a multiple-choice problem, or None."""
    if not problem or len(problem) > 50_000:
        return None
    # one option per line
    opts = [(m.group(1), m.group(2), m.start()) for m in _LINE_OPT_RE.finditer(problem)]
    run: list[tuple[str, str, int]] = []
    for letter, content, pos in opts:
        if letter == "A":
            run = [(letter, content, pos)]
        elif run and ord(letter) - ord(run[-1][0]) == 1:
            run.append((letter, content, pos))
    if _consecutive([x[0] for x in run]):
        head = _CHOICES_HEAD_RE.search(problem, 0, run[0][2] + 1)
        start = head.start() if head is not None and head.end() >= run[0][2] - 2 else run[0][2]
        return Choices(tuple(x[0] for x in run), {x[0]: _clean_content(x[1]) for x in run}, start)
    # inline "(A) 5 (B) 6 ..." (AMC style)
    marks = list(_INLINE_OPT_RE.finditer(problem))
    seq = []
    for m in marks:
        if m.group(1) == "A":
            seq = [m]
        elif seq and ord(m.group(1)) - ord(seq[-1].group(1)) == 1:
            seq.append(m)
    if _consecutive([m.group(1) for m in seq]) and len(seq) >= 3:
        contents = {}
        for k, m in enumerate(seq):
            end = seq[k + 1].start() if k + 1 < len(seq) else min(len(problem), m.end() + 200)
            contents[m.group(1)] = _clean_content(problem[m.end():end].split("\n")[0])
        return Choices(tuple(m.group(1) for m in seq), contents, seq[0].start())
    return None


def problem_without_choices(problem: str, choices: Choices | None) -> str:
    return problem if choices is None else problem[: choices.start]


# ------------------------------------------------------------------------------------------------ commitments

_POSITIVE_RE = re.compile(
    r"\b(?:correct|right|answer|true|works?|valid|satisf(?:y|ies)|match(?:es)?|fits?|consistent|supported|"
    r"possible|candidate|best|sufficient|equivalent|definitely|correspond(?:s|ing)?|only (?:one|option|choice|conclusion)|"
    r"go with|pick|choose|select|should be|must be|would be|it'?s|that'?s|which is|is indeed|makes sense|holds|"
    r"meets?|fulfils?|fulfills?)\b",
    re.IGNORECASE,
)
_NEGATIVE_RE = re.compile(
    r"(?:\bnot\b|n't\b|\bno\b|\bincorrect|\bwrong|\bout\b|\beliminat|\brule[sd]? out|\bfalse\b|\binvalid|\bcannot\b|"
    r"\bneither\b|\bnor\b|\bunlikely|\bless likely|\btoo\b|\bexcept\b|\bother than\b|\binstead of\b|\brather than\b|"
    r"\bdoubt|\bunless\b|\bbut\b)",
    re.IGNORECASE,
)
_TENTATIVE_RE = re.compile(
    r"\b(?:if|maybe|perhaps|suppose|supposing|check(?:ing)? (?:if|whether)|whether|let'?s (?:check|see|test|look)|"
    r"let me (?:check|see|test|look)|starting with|looking at|consider|what about|how about|compare|test)\b",
    re.IGNORECASE,
)
_CLAUSE_CUT_RE = re.compile(r"[,;:]\s|\s[-—–]\s|\s(?:so|but|and|while|whereas|because|since)\s", re.IGNORECASE)
_CONCLUSIVE_RE = re.compile(
    r"\b(?:so|thus|therefore|hence|then|that means|this means|which means|would be|must be|should be|"
    r"can be|is the|are the|the answer)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z][a-z'-]+")
_STOP = frozenset(
    "the a an of in on at to for by with from and or is are was were be been this that these those it its as "
    "than then there their they he she his her we you your our one any some each which what who whom".split()
)


# a bare capital right after a figure's noun names a point or line of the figure ("at point C", "vertices A and B")
_FIGURE_LABEL_RE = re.compile(
    r"\b(?:points?|vertex|vertices|angles?|sides?|segments?|lines?|rays?|corners?|triangles?|midpoints?|centers?|"
    r"centres?|edges?|faces?|planes?)\s+(?:[A-Z]{1,3}\s*(?:,|and|or)\s*)*$",
    re.IGNORECASE,
)


def _mentions_and_labels(sentence: str, letters: tuple[str, ...]) -> tuple[list, list]:
    """(mentions, labels): (letter, start, end) of each option letter named in the sentence, and of each bare capital
    that labels the figure instead ("So, angle BCD is an exterior angle at point C.")."""
    cls = "".join(letters)
    rx = re.compile(
        rf"(?:\b(?i:option|choice|answer|letter|statement)\s*\(?(?P<a>[{cls}])\)?(?![\w])|"
        rf"\((?P<b>[{cls}])\)|"
        rf"(?<![\w\\(])(?P<c>[{cls}])\)|"
        rf"\\text(?:bf)?\{{\s*\(?(?P<d>[{cls}])\)?\s*\}}|"
        rf"(?<![\w\\$^_{{(])(?P<e>[{cls}])(?=\s+(?:is|was|seems|would|must|should|works|fits|matches|satisfies|"
        rf"gives|has|it|then|again|too|also|definitely)\b|[.!]?\s*$|[.!,](?:\s|$)))"
    )
    mentions: list[tuple[str, int, int]] = []
    labels: list[tuple[str, int, int]] = []
    for m in rx.finditer(sentence):
        letter = next(g for g in m.groups() if g is not None)
        label = m.group("e") is not None and _FIGURE_LABEL_RE.search(sentence, max(0, m.start() - 60), m.start())
        (labels if label else mentions).append((letter, m.start(), m.end()))
    return mentions, labels


def _letter_mentions(sentence: str, letters: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(letter, start, end) of each option letter named in the sentence (not the figure's labels)."""
    return _mentions_and_labels(sentence, letters)[0]


def _clause(sentence: str, start: int, end: int) -> tuple[int, int]:
    a = 0
    for m in _CLAUSE_CUT_RE.finditer(sentence, 0, start):
        a = m.end()
    b = len(sentence)
    m = _CLAUSE_CUT_RE.search(sentence, end)
    if m is not None:
        b = m.start()
    return a, b


# "So, that must be the correct answer.", "D is 44, so that should be the answer.": a commitment to the option named
# just before (in the same sentence or the sentence before)
_ANAPHORA_RE = re.compile(
    r"(?:^|[,;:]\s*|\s(?:so|and)\s)\W*(?:(?:so|thus|therefore|hence|then|yes|yeah|okay|ok)[\s,]+)*"
    r"(?:that|this|it|which)(?:'s|\s+is|\s+must be|\s+should be|\s+has to be|\s+seems to be|\s+is indeed)\s+"
    r"(?:definitely\s+|indeed\s+|clearly\s+)?(?:the\s+)?(?:(?:correct|right|only|best|final)\s+)?(?:answer|choice|option|one)"
    r"\s*(?:here\s*)?(?:[.!,;]|$)|"
    # "..., this conclusion is directly supported.", "This one is correct."
    r"\b(?:this|that|it)(?:\s+(?:one|option|choice|conclusion|statement|answer))?(?:'s|\s+is|\s+seems)\s+"
    r"(?:(?:directly|clearly|definitely|fully|well|best|indeed|certainly)\s+)?(?:supported|correct|right|true|valid)\b"
    r"(?!.*\b(?:but|however|although|though|only|partially|for now|so far)\b)",
    re.IGNORECASE,
)
# "Therefore, ... (option B).": a concluding sentence that ends by naming one option
_CONNECTIVE_START_RE = re.compile(r"\W*(?:so|thus|therefore|hence|consequently)\b", re.IGNORECASE)


def choice_commitments(text: str, letters: tuple[str, ...], start: int = 0, end: int | None = None) -> list[AnswerSpan]:
    """Clauses of ``text[start:end]`` that commit to an option by letter (see module docstring)."""
    if not letters:
        return []
    out: list[AnswerSpan] = []
    prev_letter: str | None = None  # the one option the previous sentence named (not negatively)
    for sa, sb in sentence_spans(text, start, end):
        sent = text[sa:sb]
        if len(sent) > 600 or "?" in sent:
            prev_letter = None
            continue
        mentions, labels = _mentions_and_labels(sent, letters)
        named = {m[0] for m in mentions}
        # (the figure's labels count here: "Vertex A is on the left, C is on the right" describes the figure)
        if len(named | {m[0] for m in labels}) >= 3:
            prev_letter = None
            continue  # "The answer choices are A) 330,825, B) ...": a listing of the options
        stmt_end = sa + len(sent.rstrip())
        found = False
        # "Statement D would be the opposite, so D is false.": a letter the sentence rejects anywhere is not chosen
        rejected = {letter for letter, ms, me in mentions if _NEGATIVE_RE.search(sent[slice(*_clause(sent, ms, me))])}
        for letter, ms, me in mentions:
            ca, cb = _clause(sent, ms, me)
            clause = sent[ca:cb]
            rel_s, rel_e = ms - ca, me - ca
            if letter in rejected or _TENTATIVE_RE.search(sent, 0, ms):
                continue
            # a positive word in the clause (or, for "which is option D" style, just before the letter); or a
            # concluding sentence that ends by naming this one option
            closing = len(named) == 1 and bool(_CONNECTIVE_START_RE.match(sent)) and not sent[me:].strip(" \t\r\n.!)*_$")
            if not closing and not _POSITIVE_RE.search(clause) and not _POSITIVE_RE.search(sent, max(0, ms - 40), ms):
                continue
            # "Option A is (x - 8)^2 + ...": describing an option, not choosing it (unless the sentence then points
            # back at it: "D is 44, so that should be the answer.")
            after = clause[rel_e:]
            if (re.match(r"\s*(?:is|=|:)\s*[\d$\\(\[-]", after) and not _POSITIVE_RE.search(after)
                    and not _ANAPHORA_RE.search(sent, me)):
                continue
            out.append(AnswerSpan(text=letter, start=sa + ca, end=stmt_end, kind="choice", explicit=True))
            found = True
            break
        if not found:
            # "So, that must be the correct answer." after "Looking at option D, that's exactly what I got."
            am = _ANAPHORA_RE.search(sent)
            if am is not None and not _NEGATIVE_RE.search(sent, am.start()) and not _TENTATIVE_RE.search(sent, am.start()):
                before = [m for m in mentions if m[2] <= am.start()]
                target = None
                if len({m[0] for m in before}) == 1 and not _NEGATIVE_RE.search(sent, 0, am.start()):
                    target = before[0][0]
                elif not mentions:
                    target = prev_letter
                if target is not None:
                    out.append(AnswerSpan(text=target, start=sa + am.start(), end=stmt_end, kind="choice",
                                          explicit=True))
        # the option under discussion: the one this sentence names, else the one named before in the same paragraph
        if named:
            prev_letter = next(iter(named)) if len(named) == 1 and not _NEGATIVE_RE.search(sent) else None
        elif _NEGATIVE_RE.search(sent) or "\n\n" in sent:
            prev_letter = None
    return out


def content_words(s: str) -> list[str]:
    """Content-word stems: lower case, stop words dropped, cut to 4 letters ("applied"/"applying" -> "appl")."""
    return [w[:4] for w in _WORD_RE.findall(s.lower()) if w not in _STOP and len(w) > 2]


def choice_content_commitments(
    text: str, choices: Choices, targets: tuple[str, ...], start: int = 0, end: int | None = None,
    min_share: float = 0.55, min_margin: float = 0.1,
) -> list[AnswerSpan]:
    """Conclusive sentences that state the text of an option of ``targets`` (letters) without naming it.

    Options of one problem share many words, so each stem is weighted by 1 / (number of options holding it): an
    option's score is the weighted share of its stems that the sentence holds. The sentence states option L when
    L scores at least ``min_share`` and beats every other option by ``min_margin``, or when every option within the
    margin holds a strict subset of the stems L holds (L's words include theirs: "all fourth-grade students at the
    school" vs "all students at the school"). The sentence must hold one of L's rarest stems (those the fewest options
    share), the words that tell L from the others.
    """
    stems = {letter: set(content_words(choices.content_value(letter))) for letter in choices.letters}
    # numeric / formula options (fewer than 3 content words) go to the implicit-answer finder instead
    if not any(len(stems.get(t, ())) >= 3 for t in targets):
        return []
    df: dict[str, int] = {}
    for ws in stems.values():
        for w in ws:
            df[w] = df.get(w, 0) + 1
    totals = {letter: sum(1 / df[w] for w in ws) for letter, ws in stems.items()}
    out = []
    for sa, sb in sentence_spans(text, start, end):
        sent = text[sa:sb]
        if len(sent) > 600 or "?" in sent or not _CONCLUSIVE_RE.search(sent) or _TENTATIVE_RE.search(sent):
            continue
        words = set(content_words(sent))
        scores = sorted(
            ((sum(1 / df[w] for w in ws & words) / totals[letter], letter) for letter, ws in stems.items()
             if len(ws) >= 3 and totals[letter]),
            reverse=True,
        )
        if not scores:
            continue
        best, letter = scores[0]
        # options within the margin of the best: one whose held stems contain every other's held stems (and more)
        # is the one stated ("all fourth-grade students in that school" states "All fourth-grade students at the
        # school", not "All students at the school", whose stems it holds as well)
        close = [lt for sc, lt in scores[1:] if best - sc < min_margin]
        if close:
            held = {lt: stems[lt] & words for lt in [letter, *close]}
            top = [lt for lt in held if all(held[o] < held[lt] for o in held if o != lt)]
            if len(top) != 1:
                continue
            letter = top[0]
            best = next(sc for sc, lt in scores if lt == letter)
        # a negation counts only beyond those the option's own text holds ("... were not a random sample")
        negations = len(_NEGATIVE_RE.findall(sent)) - len(_NEGATIVE_RE.findall(choices.content_value(letter)))
        # the option's most distinctive stem must be there: "So, initially, Account A earns more per year." does not
        # state "Account A always earns more money per year than Account B" (it lacks "always")
        rarest = min(df[w] for w in stems[letter])
        distinctive = any(df[w] == rarest for w in stems[letter] & words)
        if letter in targets and best >= min_share and negations <= 0 and distinctive:
            out.append(AnswerSpan(text=letter, start=sa, end=sa + len(sent.rstrip()), kind="choice_content",
                                  explicit=False))
    return out


# ------------------------------------------------------------------------------------------------ formula options

_FORMULA_SUBS = (
    ("\\left", ""), ("\\right", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\displaystyle", ""),
    ("\\leq", "≤"), ("\\le", "≤"), ("\\geq", "≥"), ("\\ge", "≥"), ("\\neq", "≠"), ("\\ne", "≠"),
    ("\\times", ""), ("\\cdot", ""), ("×", ""), ("·", ""), ("⋅", ""), ("*", ""), ("−", "-"), ("–", "-"),
    ("²", "^2"), ("³", "^3"), ("⁴", "^4"), ("\\,", ""), ("\\!", ""), ("\\(", ""), ("\\)", ""), ("$", ""),
)
_BRACED_ONE_RE = re.compile(r"\{(\w)\}")
# spaces next to a symbol go ("x + 8" -> "x+8"); a space between two words or numbers stays ("be 2a^3")
_SPACED_SYMBOL_RE = re.compile(r" ?([^\w ]) ?")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_FORMULA_OP_RE = re.compile(r"[=<>≤≥≠+\-*/^]|\\frac|\\sqrt")
# a character that continues a formula: "2a^3+6a^2" is not stated by "2a^3+6a^2b" or "12a^3+6a^2"
_FORMULA_CONT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789^_.\\")
_GUESS_RE = re.compile(r"\b(?:maybe|perhaps|might|if|suppose|supposing|whether|for example|for instance)\b",
                       re.IGNORECASE)


def formula_key(s: str) -> str:
    """A formula without spaces around symbols, ``$``, sizing commands or multiplication signs, LaTeX relations as
    symbols, ``x^{2}`` as ``x^2`` and ``9,700`` as ``9700``: the same formula typed two ways ("2a³ + 6a²",
    ``2a^{3} + 6a^{2}``; "2 × (x³ + 2)", ``2(x^{3} + 2)``) gets one key."""
    for a, b in _FORMULA_SUBS:
        if a in s:
            s = s.replace(a, b)
    s = _SPACED_SYMBOL_RE.sub(r"\1", " ".join(s.split()))
    s = _BRACED_ONE_RE.sub(r"\1", s)
    return _THOUSANDS_RE.sub("", s)


def _formula_options(choices: Choices, stem: str) -> dict[str, str]:
    """letter -> key of each option that is a formula (an operator or relation and a letter or a second number, at
    least 4 characters, not in the problem's stem)."""
    stem_key = formula_key(stem)
    out = {}
    for letter in choices.letters:
        content = choices.content_value(letter)
        if len(content_words(content)) >= 3:
            continue  # a text option: choice_content_commitments
        key = formula_key(content)
        if len(key) < 4 or not _FORMULA_OP_RE.search(key) or key in stem_key:
            continue
        if not re.search(r"[A-Za-z]", key.replace("\\frac", "").replace("\\sqrt", "")) and len(re.findall(r"\d+", key)) < 2:
            continue
        out[letter] = key
    return out


def choice_formula_commitments(
    text: str, choices: Choices, targets: tuple[str, ...], stem: str, start: int = 0, end: int | None = None,
) -> list[AnswerSpan]:
    """Sentences that state the formula of an option of ``targets`` (letters): "the expanded form should be
    2a³ + 6a²" for the option ``2a^{3} + 6a^{2}``, "we would write 1,510 ≤ d ≤ 4,130".

    The formula must stand on its own in the sentence (no letter or digit glued to either end), no longer option
    containing it may occur there, and the sentence must not be a question, a guess ("maybe", "if", "for example"),
    a negation, or a description of an option: one that names another option, or names this one without a positive
    word ("Option D is 2a³ + 6a²." describes D; "Looking at option D, that's exactly what I got: ..." commits).
    """
    keys = _formula_options(choices, stem)
    wanted = {t: keys[t] for t in targets if t in keys}
    if not wanted:
        return []
    out: list[AnswerSpan] = []
    for sa, sb in sentence_spans(text, start, end):
        sent = text[sa:sb]
        if len(sent) > 600 or "?" in sent:
            continue
        sk = formula_key(sent)
        for letter, key in wanted.items():
            i = sk.find(key)
            while i != -1:
                j = i + len(key)
                after_ok = j == len(sk) or sk[j] not in _FORMULA_CONT or (
                    sk[j] == "." and (j + 1 == len(sk) or not sk[j + 1].isdigit()))
                if (i == 0 or sk[i - 1] not in _FORMULA_CONT) and after_ok:
                    break
                i = sk.find(key, i + 1)
            if i == -1:
                continue
            if any(len(k) > len(key) and key in k and k in sk for k in keys.values()):
                continue
            if _GUESS_RE.search(sent) or _NEGATIVE_RE.search(sent):
                continue
            named = {m[0] for m in _letter_mentions(sent, choices.letters)}
            if named - {letter} or (named and not _POSITIVE_RE.search(sent)):
                continue
            out.append(AnswerSpan(text=letter, start=sa, end=sa + len(sent.rstrip()), kind="choice_formula",
                                  explicit=False))
            break
    return out
