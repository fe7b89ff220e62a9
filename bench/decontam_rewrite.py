"""Rewrites of benchmark problems the ways real training corpora carry them (the positives of bench_decontam.py).

Every rewrite applies a random handful of the transforms below (seeded, so a run is reproducible). None of them
paraphrases: the words and numbers of the problem stay, only their layout and spelling change, as in scraped or
re-generated corpora (NuminaMath, OpenThoughts, OpenR1, s1K, LIMO, evaluation dumps):

* ``rewrap``: whitespace collapsed and lines re-broken at another width, or paragraphs joined;
* ``delimiters``: ``$…$`` -> ``\\(…\\)`` / ``$$…$$`` / ``\\[…\\]`` / no delimiters at all, display math <-> inline;
* ``fractions``: ``\\frac`` <-> ``\\dfrac`` / ``\\tfrac``, simple ``\\frac{a}{b}`` -> ``a/b``;
* ``wrapper``: a generation prompt around the problem (R1 / QwQ / Qwen-Math / Llama / simple-evals / OpenThoughts /
  chat templates / "Problem:" ... "Answer:" / problem-set numbering), some of them unknown to the normalizer;
* ``choices``: answer choices re-laid out (``(A) x (B) y``, ``$\\textbf{(A) }x\\qquad …$``, ``A. x`` lines,
  ``A) x``, ``(a) x``);
* ``symbols``: ``\\le`` -> ``≤``, ``\\pi`` -> ``π``, ``\\times`` <-> ``\\cdot`` / ``×``, ``^\\circ`` -> ``°``, ``-`` ->
  ``−``, ``\\ldots`` <-> ``\\cdots`` / ``...``;
* ``math_spacing``: spaces added or removed around ``=``, ``+``, ``,`` inside math, ``^{2}`` <-> ``^2``,
  ``\\left(`` / ``\\right)`` added or removed, ``\\!`` / ``\\,`` removed;
* ``numbers``: thousands separators added or removed (``80,000`` <-> ``80000``, ``1,\\!000``), ``0.5`` <-> ``.5``;
* ``text_commands``: ``\\text{ cm}`` -> `` cm``, ``\\mathrm{~m}`` -> ``m``, ``\\%`` <-> ``%``, ``\\mathbb`` <-> ``\\mathbf``;
* ``markdown``: a keyword bolded, a heading, a bullet before the question;
* ``typo``: one character dropped, doubled or two swapped in one or two longer words (OCR / scraping noise);
* ``drop_instruction``: a trailing answer-format sentence ("Express your answer as a common fraction.") dropped,
  as corpora that re-pose a problem often do;
* ``figure``: an ``[asy]`` figure removed;
* ``case``: the first letter lower-cased, a sentence-final period dropped.
"""

from __future__ import annotations

import random
import re

WRAPPERS = [
    "{p}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
    "Return your final response within \\boxed{{}}. {p}",
    "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>\n"
    "<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n",
    "<｜begin▁of▁sentence｜><｜User｜>{p}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
    "<｜Assistant｜><think>\n",
    "Problem: {p}\nAnswer:",
    "Question: {p}\nLet's think step by step and output the final answer within \\boxed{{}}.",
    "Solve the following math problem efficiently and clearly. The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering.\n\n{p}",
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n{p}\n\nRemember to put your "
    "answer on its own line after \"Answer:\", and you do not need to use a \\boxed command.",
    "### Problem\n{p}\n\n### Solution\n",
    "Problem {k}. {p}",
    "{k}. {p}",
    "You are a helpful math assistant. Solve the problem below and give the final answer in \\boxed{{}}.\n\n{p}",
    "{p}\n\nPut your final answer in a box.",
    "Q: {p}\nA:",
    "User: {p}\nAssistant: <think>",
    "{p} Let's think step by step.",
    "Answer the following question. {p}",
    "## Task {k}\n\n{p}",
    "{p}\n\nYour final answer should be given as \\boxed{{answer}}.",
    "<s>[INST] {p} [/INST]",
]

_INLINE = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", re.S)
_DISPLAY = re.compile(r"\\\[(.+?)\\\]|\$\$(.+?)\$\$", re.S)


def rewrap(p: str, rng: random.Random) -> str:
    if rng.random() < 0.35:
        return re.sub(r"\s*\n\s*", " ", p)
    words = p.split()
    width = rng.randint(40, 100)
    lines, cur = [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return "\n".join(lines)


def delimiters(p: str, rng: random.Random) -> str:
    style = rng.choice(["paren", "none", "dollars2", "bracket_display", "display_to_inline"])
    if style == "paren":
        p = _INLINE.sub(lambda m: f"\\({m.group(1)}\\)", p)
    elif style == "none":
        p = _INLINE.sub(lambda m: m.group(1), p)
        p = _DISPLAY.sub(lambda m: " " + (m.group(1) or m.group(2)) + " ", p)
    elif style == "dollars2":
        p = _DISPLAY.sub(lambda m: f"$${m.group(1) or m.group(2)}$$", p)
        if rng.random() < 0.5:
            p = _INLINE.sub(lambda m: f"${m.group(1).strip()}$", p)
    elif style == "bracket_display":
        p = _DISPLAY.sub(lambda m: f"\n\\[\n{(m.group(1) or m.group(2)).strip()}\n\\]\n", p)
    else:
        p = _DISPLAY.sub(lambda m: f" ${(m.group(1) or m.group(2)).strip()}$ ", p)
    return p


def fractions(p: str, rng: random.Random) -> str:
    style = rng.choice(["dfrac", "tfrac", "frac", "slash"])
    if style in ("dfrac", "tfrac"):
        return re.sub(r"\\[dt]?frac(?![a-z])", lambda m: "\\" + style, p)
    if style == "frac":
        return re.sub(r"\\[dt]frac(?![a-z])", r"\\frac", p)
    # not after a digit: 2\frac{3}{4} is a mixed number, "23/4" would be another number
    return re.sub(r"(?<![\d}])\\[dt]?frac\{([A-Za-z0-9]+)\}\{([A-Za-z0-9]+)\}", r"\1/\2", p)


def wrapper(p: str, rng: random.Random) -> str:
    w = rng.choice(WRAPPERS)
    return w.replace("{k}", str(rng.randint(1, 30))).replace("{{}}", "\0").replace("{{answer}}", "\1").replace(
        "{{ANSWER}}", "\2").replace("{p}", p).replace("\0", "{}").replace("\1", "{answer}").replace("\2", "{ANSWER}")


_CHOICE_PATTERNS = [
    re.compile(r"\\textbf\{\(([A-E])\)\s*\}\s*\\?\s*"),  # $\textbf{(A) }x\qquad
    re.compile(r"\\textbf\{\(([A-E])\)\}\s*\\?\s*"),
    re.compile(r"\(([A-E])\)\s*"),
]


def choices(p: str, rng: random.Random) -> str:
    items = None
    for pat in _CHOICE_PATTERNS:
        ms = list(pat.finditer(p))
        if len(ms) >= 3 and [m.group(1) for m in ms[:3]] == ["A", "B", "C"]:
            items = ms
            break
    if items is None:
        return p
    head = p[: items[0].start()]
    opts = []
    for k, m in enumerate(items):
        end = items[k + 1].start() if k + 1 < len(items) else len(p)
        text = p[m.end() : end]
        text = re.sub(r"\\qquad|\\quad|\$\s*\$", " ", text).strip().strip("$").strip()
        opts.append((m.group(1), text))
    # the tail after the last option (e.g. "Enter the letter of the correct option.") stays if it is on its own line
    tail = ""
    last = opts[-1][1]
    if "\n" in last:
        first, rest = last.split("\n", 1)
        opts[-1] = (opts[-1][0], first.strip())
        tail = "\n" + rest.strip()
    style = rng.choice(["paren", "textbf", "dot_lines", "paren_letter", "lower"])
    if style == "paren":
        body = " ".join(f"({l}) {t}" for l, t in opts)
    elif style == "textbf":
        body = "$" + "\\qquad".join(f"\\textbf{{({l}) }}{t.strip('$')}" for l, t in opts) + "$"
    elif style == "dot_lines":
        body = "\n".join(f"{l}. {t}" for l, t in opts)
    elif style == "paren_letter":
        body = "\n".join(f"{l}) {t}" for l, t in opts)
    else:
        body = "\n".join(f"({l.lower()}) {t}" for l, t in opts)
    return head.rstrip() + "\n\n" + body + tail


_SYMBOL_SWAPS = [
    (r"\\le(?![a-z])", "≤"), (r"\\leq(?![a-z])", "≤"), (r"\\ge(?![a-z])", "≥"), (r"\\geq(?![a-z])", "≥"),
    (r"\\pi(?![a-z])", "π"), (r"\\times(?![a-z])", "\\cdot"), (r"\\cdot(?![a-z])", "\\times"),
    (r"\\times(?![a-z])", "×"), (r"\^\\circ", "°"), (r"\^\{\\circ\}", "°"), (r"(?<=\d)-(?=\d)", "−"),
    (r"\\ldots", "\\cdots"), (r"\\cdots", "..."), (r"\\dots(?![a-z])", "\\ldots"), (r"\\neq(?![a-z])", "≠"),
    (r"\\theta(?![a-z])", "θ"), (r"\\alpha(?![a-z])", "α"), (r"\\sqrt(?![a-z])", "√"),
]


def symbols(p: str, rng: random.Random) -> str:
    for pat, rep in rng.sample(_SYMBOL_SWAPS, k=rng.randint(2, 6)):
        p = re.sub(pat, lambda m: rep, p)
    return p


def math_spacing(p: str, rng: random.Random) -> str:
    def inner(s: str) -> str:
        mode = rng.random()
        if mode < 0.4:
            s = re.sub(r"\s*([=+<>])\s*", r" \1 ", s)
            s = re.sub(r"(?<!\d),(?=\S)|,(?=[^\d\s])", ", ", s)  # never inside a number (1,000)
        elif mode < 0.7:
            s = re.sub(r"\s*([=+])\s*", r"\1", s)
        if rng.random() < 0.5:
            s = re.sub(r"\^\{(\w)\}", r"^\1", s)
            s = re.sub(r"_\{(\w)\}", r"_\1", s)
        else:
            s = re.sub(r"\^(\w)", r"^{\1}", s)
        if rng.random() < 0.4:
            s = re.sub(r"\\left|\\right", "", s)
        elif rng.random() < 0.3:
            s = re.sub(r"(?<!\\left)\(", r"\\left(", s)
            s = re.sub(r"(?<!\\right)\)", r"\\right)", s)
        s = s.replace("\\!", "").replace("\\,", " ") if rng.random() < 0.5 else s
        return s

    p = _INLINE.sub(lambda m: "$" + inner(m.group(1)) + "$", p)
    return _DISPLAY.sub(lambda m: "\\[" + inner(m.group(1) or m.group(2)) + "\\]", p)


def numbers(p: str, rng: random.Random) -> str:
    if rng.random() < 0.5:  # separators dropped: 80,000 / 1,\!000 -> 80000 / 1000
        p = re.sub(r"(?<=\d)(?:,\\!|\{,\}|,)(?=\d{3}(?!\d))", "", p)
    else:  # added to quantities of five digits or more (not to years)
        p = re.sub(r"(?<![\d.,])(\d{2,3})(\d{3})(?![\d.])", r"\1,\2", p)
    if rng.random() < 0.5:
        p = re.sub(r"(?<!\d)0\.(\d)", r".\1", p)
    return p


def text_commands(p: str, rng: random.Random) -> str:
    p = re.sub(r"\\(?:text|mathrm)\{\s*~?\s*([^{}]*)\}", lambda m: " " + m.group(1).strip() + " ", p)
    if rng.random() < 0.5:
        p = p.replace("\\%", "%")
    else:
        p = re.sub(r"(?<!\\)%", r"\\%", p)
    if rng.random() < 0.5:
        p = p.replace("\\mathbb", "\\mathbf")
    return p


def markdown(p: str, rng: random.Random) -> str:
    words = p.split(" ")
    cands = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 4]
    if cands and rng.random() < 0.6:
        i = rng.choice(cands)
        words[i] = f"**{words[i]}**"
    p = " ".join(words)
    if rng.random() < 0.5:
        p = "**Problem.** " + p
    return p


def typo(p: str, rng: random.Random) -> str:
    words = p.split(" ")
    cands = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 6]
    for i in rng.sample(cands, k=min(len(cands), rng.randint(1, 2))):
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        kind = rng.random()
        if kind < 0.33:
            w = w[:j] + w[j + 1 :]
        elif kind < 0.66:
            w = w[:j] + w[j] + w[j:]
        else:
            w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
        words[i] = w
    return " ".join(words)


_FORMAT_SENTENCE = re.compile(
    r"\s*(?:Express your answer|Enter your answer|Give your answer|Write your answer|Express the answer|"
    r"Your answer should|Enter the|Please format your answer|Round your answer)[^.]*\.\s*$"
)


def drop_instruction(p: str, rng: random.Random) -> str:
    return _FORMAT_SENTENCE.sub("", p)


def figure(p: str, rng: random.Random) -> str:
    return re.sub(r"\[asy\].*?\[/asy\]", " ", p, flags=re.S)


def case(p: str, rng: random.Random) -> str:
    p = p.strip()
    if p and rng.random() < 0.5:
        p = p[0].lower() + p[1:]
    if p.endswith(".") and rng.random() < 0.7:
        p = p[:-1]
    return p


TRANSFORMS = {
    "rewrap": rewrap, "delimiters": delimiters, "fractions": fractions, "choices": choices, "symbols": symbols,
    "math_spacing": math_spacing, "numbers": numbers, "text_commands": text_commands, "markdown": markdown,
    "typo": typo, "drop_instruction": drop_instruction, "figure": figure, "case": case,
}
# how often each transform is drawn (wrapper is decided apart, on 70 % of rewrites)
WEIGHTS = {
    "rewrap": 3, "delimiters": 3, "fractions": 2, "choices": 2, "symbols": 2, "math_spacing": 3, "numbers": 1,
    "text_commands": 1, "markdown": 1, "typo": 1, "drop_instruction": 1, "figure": 1, "case": 1,
}


def rewrite(problem: str, rng: random.Random, *, k: tuple[int, int] = (2, 5)) -> tuple[str, list[str]]:
    """A rewrite of ``problem`` and the transforms applied (in order)."""
    names = list(WEIGHTS)
    chosen: list[str] = []
    for _ in range(rng.randint(*k)):
        name = rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]
        if name not in chosen:
            chosen.append(name)
    if "choices" not in chosen and re.search(r"\(A\)|\\textbf\{\(A\)", problem):
        chosen.append("choices")  # a problem with choices has them re-laid out most of the time in real corpora
    out = problem
    for name in chosen:
        out = TRANSFORMS[name](out, rng)
    if rng.random() < 0.7:
        out = wrapper(out, rng)
        chosen.append("wrapper")
    return out, chosen
