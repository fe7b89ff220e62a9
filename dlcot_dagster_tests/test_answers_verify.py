"""Answer equivalence: our own cases per answer type, the MATH answer-type key,
and the public API contract."""

from __future__ import annotations

import json
import pickle
import re
from fractions import Fraction

import pytest

from dlcot_dagster.domain.answers import AnswerChecker, Verdict, compare
from dlcot_dagster.domain.answers.fastpath import gold_alternatives
from dlcot_dagster.domain.answers.numeric import parse_number

from .conftest import shared_data_dir

CASES_TRUE = [
    # integers, zero padding, floats
    ("25", "025", "zero-padded integer"),
    ("0", "000", "zero"),
    ("27", "27.0", "float written as 27.0"),
    ("27.0", "27", "gold as float (AMC style)"),
    ("1000", "1,000", "thousands separator"),
    ("7425000", "7,425,000", "thousands separators"),
    ("11111111100", "11,\\!111,\\!111,\\!100", "LaTeX thousands separator"),
    ("0.5", ".5", "leading dot"),
    ("-3", "−3", "unicode minus"),
    # fractions
    ("\\frac{1}{2}", "0.5", "fraction vs decimal"),
    ("\\frac{14}{3}", "\\dfrac{14}{3}", "dfrac"),
    ("\\frac{1}{3}", "\\tfrac13", "tfrac without braces"),
    ("-\\frac{10}{9}", "-10/9", "slash fraction"),
    ("\\frac{-3}{4}", "-\\frac{3}{4}", "sign placement"),
    ("\\frac{5}{2}", "2\\frac{1}{2}", "mixed number"),
    ("\\frac{1}{12}", "0.0833333333", "decimal to 6 places"),
    # repeating decimals
    ("\\frac{1}{3}", "0.\\overline{3}", "repeating decimal"),
    ("\\frac{1}{6}", "0.1\\overline{6}", "repeating tail"),
    ("\\frac{7}{9}", "0.\\overline{7}", "repeating decimal 2"),
    # percent, degrees, currency, units
    ("28\\%", "28", "percent sign dropped"),
    ("28\\%", "0.28", "percent as fraction"),
    ("45", "45^\\circ", "degrees"),
    ("90^\\circ", "90", "degrees on gold"),
    ("30", "30°", "unicode degree"),
    ("15000", "\\$15,\\!000", "currency"),
    ("5.00", "\\$5", "currency and trailing zeros"),
    ("125", "125 \\text{ miles}", "unit text"),
    ("15", "15\\mbox{ cm}^2", "unit with power"),
    ("0.06", "0.06 \\text{ yuan}", "currency word"),
    ("3", "3\\,\\text{cm}.", "unit with thin space and period"),
    ("9", "9 \\text{ meters}", "meters"),
    # text answers
    ("\\text{Evelyn}", "Evelyn", "text wrapper"),
    ("odd", "\\text{Odd}", "case-insensitive text"),
    ("\\text{The midpoints form a regular hexagon}", "the midpoints  form a regular hexagon", "long text, spacing"),
    ("\\text{Friday}", "friday", "weekday"),
    ("\\text{ellipse}", "\\text{an ellipse}", "leading article"),
    ("\\text{the circle}", "Circle", "leading the"),
    # multiple choice
    ("B", "(B)", "choice letter in parentheses"),
    ("\\text{(C)}", "C", "choice in text"),
    ("C", "\\textbf{(C)}", "bold choice"),
    ("A", "A) The average number of boxes sold per student", "choice with option text"),
    ("\\text{E}", "E", "text E"),
    # expressions
    ("x^2+2x+1", "(x+1)^2", "polynomial identity"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", "sqrt without braces"),
    ("3\\sqrt{13}", "\\sqrt{117}", "simplified radical"),
    ("\\tan^2(y)+1", "\\sec^2(y)", "trig identity"),
    ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", "split fraction"),
    ("2k", "2 k", "spacing"),
    ("x/2-1/4+ce^{-2x}", "\\frac{1}{2}x-\\frac{1}{4}+ce^{-2x}", "slash vs frac with symbols"),
    ("y = 2x + 3", "2x+3", "function answer with y ="),
    ("x = 5", "5", "assignment vs value"),
    ("k=1", "1", "assignment"),
    ("-2 + 7i", "7i - 2", "complex"),
    ("x", "X", "single letters compare case-insensitively, as math-verify's parser lower-cases"),
    ("\\frac{1}{5} + \\frac{3}{5}i", "0.2+0.6i", "complex with decimals"),
    ("204_5", "204_{5}", "base subscript"),
    # tuples / vectors (ordered)
    ("(2,3)", "(2, 3)", "tuple spacing"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\dfrac{\\pi}{2})", "polar point"),
    ("(1,\\frac{9}{2})", "(1,4.5)", "tuple with decimal"),
    ("\\left( -\\frac{5}{3}, \\frac{2}{3}, \\frac{19}{3} \\right)", "(-5/3, 2/3, 19/3)", "3-tuple"),
    # unordered lists / sets
    ("1, -2", "-2, 1", "unordered solutions"),
    ("-2,1", "1 \\text{ and } -2", "solutions with and"),
    ("\\{1,2\\}", "\\{2, 1\\}", "set"),
    ("19 \\text{ and }43", "43, 19", "and-list"),
    ("3i,-3i", "-3i, 3i", "complex roots"),
    ("\\frac{\\pi}{4},\\frac{5\\pi}{4}", "\\frac{5\\pi}{4}, \\frac{\\pi}{4}", "angles"),
    # intervals
    ("[0,1)", "[0, 1)", "half-open interval"),
    ("(-\\infty, -2) \\cup (0, 1)", "(-\\infty,-2)\\cup(0,1)", "union"),
    ("\\left[ -\\frac{1}{2}, \\frac{1}{2} \\right]", "[-0.5, 0.5]", "interval with decimals"),
    ("x \\in [-2,7]", "[-2,7]", "interval with x in"),
    # matrices
    ("\\begin{pmatrix} 1 & 2 \\\\ -3 & -5 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\-3&-5\\end{bmatrix}", "matrix env"),
    ("\\begin{pmatrix} 12/13 \\\\ -18/13 \\end{pmatrix}", "\\begin{pmatrix} \\frac{12}{13} \\\\ -\\frac{18}{13} \\end{pmatrix}", "vector"),
    # answers wrapped in words (domain/answers/prose.py)
    ("56", "56.0 g of CO consumed", "value with a unit of several words"),
    ("12\\pi", "12\\pi  inches per second", "symbolic value with a rate unit"),
    ("4210_{5}", "4210 in base 5", "base in words"),
    ("6 - 5i", "written as   6 - 5i", "lead-in words"),
    ("B", "option B", "option named"),
    ("10", "approximately 10", "approximately"),
    ("C", "\\textbf{(C) } 12", "option in parentheses with its value"),
    ("\\frac{1}{2}", "one half", "fraction in words"),
    ("(C) 12", "12", "an option's value against the value"),
    # radicals, roots and fractions in plain text
    ("3\\sqrt{13}", "3√13", "Unicode radical over a two-digit number"),
    ("\\sqrt{61}", "√(61)", "Unicode radical with parentheses"),
    ("2 \\sqrt{3} + 3", "2 sqrt(3) + 3", "ASCII sqrt()"),
    ("\\frac{1 + \\sqrt{5}}{4}", "(1 + sqrt(5))/4", "ASCII sqrt() in a fraction"),
    ("\\sqrt{2+\\sqrt{3}}", "√(2+√3)", "nested Unicode radicals"),
    ("\\sqrt[3]{2}", "∛2", "Unicode cube root"),
    ("\\frac{1}{2}", "½", "vulgar fraction"),
    ("2.5", "2½", "mixed number with a vulgar fraction"),
    ("\\ln 2", "ln(2)", "ASCII function name"),
    ("12\\pi", "12\\pi cm", "a unit abbreviation after a symbolic constant"),
    ("4\\sqrt{3}", "4√3 cm²", "a squared unit after a radical"),
    ("2x^{10} - 1", "2x**10 - 1", "Python-style power"),
    ("2.89 \\times 10^{-19}", "2.89 × 10<sup>-19</sup> J", "HTML superscript"),
    ("4210_{5}", "04210_5", "a leading zero in a base-5 numeral"),
    ("A3_{16}", "a3_{16}", "hex digits in either case"),
    ("\\frac \\pi4 + 2 - \\sqrt2", "\\frac{\\pi}{4} + 2 - \\sqrt{2}", "unbraced vs braced arguments"),
    ("6, -2", "x = 6 or x = -2", "solutions listed as assignments of one unknown"),
    ("-4, 4", "x=-4 \\text{ or } x=4", "assignments joined by a text 'or'"),
    ("\\frac{1}{2}, 3", "x = 3 or x = \\frac{1}{2}", "assignments in another order"),
    ("12", "\\textbf{(C) } 12", "the value against an option with that value"),
    ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "(1, -2)", "column vector against a tuple"),
    ("(\\frac{1}{2}, 3)", "\\begin{pmatrix} 1/2 & 3 \\end{pmatrix}", "tuple against a row vector"),
    ("3/5", "three-fifths", "fraction in words, hyphenated"),
    ("\\frac{5}{2}", "2 1/2", "a mixed number in plain text"),
    ("-1.5", "-1 1/2", "a negative mixed number in plain text"),
    ("|x-1|", "abs(x - 1)", "abs() as an absolute value"),
    ("[1,2]\\cup[3,4]", "[3,4] \\cup [1,2]", "a union in another order"),
    ("\\text{all real numbers}", "(-\\infty, \\infty)", "the real line in words and as an interval"),
    ("\\infty", "\\text{infinity}", "infinity in words"),
    ("\\frac{1}{2}", "1\u20442", "Unicode fraction slash"),
    ("3", "6 \u00f7 2", "Unicode division sign"),
    ("\\left|2x\\right| + 1", "abs(2*x) + 1", "abs() inside an expression"),
    # Unicode sub- and superscripts
    ("E_{1},E_{2}", "E₁ and E₂", "unicode subscripts in a list"),
    ("10^{-3}", "10⁻³", "unicode negative superscript"),
    ("5.3e-9", "5.3 × 10⁻⁹", "unicode scientific notation"),
    # multi-form golds (SAT)
    (".2,  1/5", "\\dfrac{1}{5}", "SAT alternatives"),
    (".2,  1/5", "0.2", "SAT alternatives decimal"),
    (".3833,  23/60", "\\frac{23}{60}", "SAT alternatives rounded decimal"),
    ("423.5,  847/2", "423.5", "SAT alternatives"),
    # equations
    ("34x+45y-20z+100=0", "-34x-45y+20z-100=0", "equation times -1"),
    ("x^2/4 + y^2/3 = 1", "x^2/16 + y^2/12 = 1/4", "scaled equation"),
    ("\\sqrt{2}\\cos(2t-\\pi/4)", "\\sqrt{2}\\cos(2t-\\frac{\\pi}{4})", "slash in argument"),
    # clock time
    ("12:00", "12:00", "clock"),
    # scientific notation
    ("1.87e6", "1.87\\times10^{6}", "e-notation vs times ten"),
    ("1e-8", "10\\times10^{-9}", "scientific"),
]

CASES_FALSE = [
    ("25", "24", "different integers"),
    ("27", "27.5", "different decimals"),
    ("\\frac{1}{3}", "0.333", "too short a decimal"),
    ("\\frac{1}{2}", "\\frac{1}{3}", "different fractions"),
    ("28\\%", "29", "different percent"),
    ("\\text{Evelyn}", "Carla", "different names"),
    ("B", "C", "different choices"),
    ("(C) 12", "13", "an option's value against another value"),
    ("3\\sqrt{13}", "3√14", "another radicand"),
    ("2112_6", "2112_7", "the same digits in another base"),
    ("2.89e-19", "2.89 × 10<sup>-18</sup> J", "HTML superscript, another exponent"),
    ("8_9", "8_7", "not a numeral of its base"),
    ("\\frac \\pi4 + 2 - \\sqrt2", "\\frac \\pi4 + 2 - \\sqrt3", "unbraced arguments, another radicand"),
    ("90\\text{ square\nunits}", "91\\text{ square\nunits}", "a unit broken over two lines"),
    ("-4, 4", "x = -4 or x = 5", "assignments with a wrong value"),
    ("2", "x = 2 or x = 3", "an extra solution"),
    ("x^{10}", "x**2", "another power"),
    ("\\frac{5}{2}", "1 3/2", "a whole number and an improper fraction is not a mixed number"),
    ("2.5", "2 1/4", "a mixed number with another fraction"),
    ("|x-1|", "abs(x + 1)", "abs() of another argument"),
    ("[1,2]\\cup[3,4]", "[3,4] \\cup [1,3]", "a union with another endpoint"),
    ("\\mathbb{R}", "(0, \\infty)", "the real line against a half-line"),
    ("\\infty", "-\\infty", "infinities of opposite signs"),
    ("\\frac{1}{3}", "1\u20442", "Unicode fraction slash, another fraction"),
    ("\\sqrt{x}+1", "sqrt(x+1)", "the radical's argument is what its parentheses hold"),
    ("\\sqrt[3]{2}", "√2", "a cube root is not a square root"),
    ("\\frac{1}{3}", "½", "another vulgar fraction"),
    ("2\\pi", "\\pi m", "the value before the unit still counts"),
    ("(C) 12", "D", "an option against another letter"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 3)", "vector against a different tuple"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2, 0)", "vector against a longer tuple"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "(1, 2, 3, 4)", "a 2x2 matrix is not a tuple"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "[1, 2]", "vector against a closed interval"),
    ("\\text{ellipse}", "\\text{a parabola}", "article, different words"),
    ("\\text{a}", "\\text{an}", "short words are not articles to strip"),
    ("\\text{(B)}", "(D)", "different choices, other forms"),
    ("x^2+1", "x^2-1", "different polynomials"),
    ("2x", "2y", "different variables"),
    ("\\sqrt{x^2}", "x", "not an identity on complex points"),
    ("(3,1)", "(1,3)", "ordered tuple"),
    ("1, -2", "1, 2", "different solution set"),
    ("1, -2", "1", "missing solution"),
    ("(6,31,-1)", "1", "number vs tuple"),
    ("[0,1)", "(0,1)", "interval closure"),
    ("[0,1)", "[0,9)", "interval endpoint"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}", "matrix entry"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "matrix shape"),
    (".2,  1/5", "\\frac{1}{4}", "SAT alternatives, wrong"),
    ("(1, 2)", "1", "tuple is not a list of alternatives"),
    ("12:00", "1:00", "clock"),
    ("7.4e-12", "2.3\\times10^{-12}", "small numbers, relative tolerance"),
    ("1.325e-27", "13.252\\times10^{-27}", "factor of ten"),
    ("5x-7y+11z+4=0", "0", "equation vs number"),
    ("-2 + 7i", "-2 - 7i", "conjugate"),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 + \\frac{1}{\\mathrm{e}}", "sign (plain math-verify gets this wrong)"),
    # an empty prediction against a real reference is wrong, not undecided
    ("5", "   ", "empty pred"),
    ("5", "", "empty pred, no characters"),
    ("\\emptyset", "", "empty pred vs the empty set"),
    # equations in different unknowns (math-verify needs about 47 s to say so on this one: over the time box)
    ("ml\\ddot{\\theta}(t)-mg\\sin\\theta(t)=f(t)\\cos\\theta(t)",
     "\\frac{d^2 \\theta}{dt^2} = -\\frac{g}{l} \\sin \\theta + \\frac{f(t)}{m l} \\cos\\theta", "equations in other unknowns"),
    ("x+y=3", "x+z=3", "equations in other unknowns, linear"),
    # words around or instead of a value
    ("204", "Calculating", "words only vs number"),
    ("B", "option B is wrong", "option rejected"),
    ("5", "5 is not the answer", "value rejected"),
    ("2", "at least 2", "a bound, not the value"),
    ("50", "approximately 48.48 microns", "another value with a unit"),
    ("1/3", "two thirds", "another fraction in words"),
    ("B", "(C) 12", "another option with its value"),
    # sets of reals
    ("\\emptyset", "5", "empty set vs number"),
    ("\\varnothing", "\\{1, 2\\}", "empty set vs listed set"),
    ("(3,\\infty)", "x \\geq 3", "interval vs inequality, closure"),
    ("(3,\\infty)", "x > 4", "interval vs inequality, endpoint"),
    ("(-\\infty,1]\\cup[3,\\infty)", "x \\le 1 \\text{ or } x \\ge 2", "union vs inequalities, endpoint"),
    ("[-2, 5)", "-2 < x < 5", "chain, closure"),
    ("(-\\infty, 3)", "\\{x : x \\le 3\\}", "set-builder, closure"),
]

# the same set of reals in other notations (see domain/answers/sets.py)
CASES_SETS = [
    ("\\emptyset", "\\varnothing", "emptyset vs varnothing"),
    ("\\emptyset", "\\{\\}", "emptyset vs empty braces"),
    ("\\emptyset", "\\{ \\}", "emptyset vs spaced braces"),
    ("\\varnothing", "\\text{no solution}", "varnothing vs no solution"),
    ("\\emptyset", "∅", "emptyset vs unicode"),
    ("\\O", "\\text{no real solutions}", "O vs no real solutions"),
    ("(3,\\infty)", "x>3", "interval gold, inequality pred"),
    ("x > 3", "(3, \\infty)", "inequality gold, interval pred"),
    ("[-2,5)", "-2 \\le x < 5", "chain"),
    ("(5, -1]", "(5, -1]", "identical text"),
    ("(-\\infty,1]\\cup[3,\\infty)", "x \\le 1 \\text{ or } x \\ge 3", "union vs or"),
    ("x<-1 \\text{ or } x>2", "(-\\infty,-1)\\cup(2,\\infty)", "or vs union"),
    ("(-\\infty, 0) \\cup (0, \\infty)", "x \\neq 0", "not equal"),
    ("[\\frac{1}{2}, \\sqrt{2})", "\\frac12 \\le x < \\sqrt 2", "closed-form endpoints"),
    ("1<x<3", "x>1 \\text{ and } x<3", "and"),
    ("x \\in (-2, 7]", "-2 < x \\le 7", "membership"),
    ("-3 < x < 3", "|x|<3", "absolute value"),
    ("(-\\infty,-2]\\cup[2,\\infty)", "|x| \\ge 2", "absolute value, outside"),
    ("3 > x \\geq -1", "[-1, 3)", "decreasing chain"),
    ("(-\\infty, 1) \\cup [1, 4]", "x \\le 4", "touching intervals merge"),
    ("(-\\infty, 3)", "\\{x \\mid x < 3\\}", "set-builder, mid"),
    ("(-\\infty,1)\\cup(2,\\infty)", "\\{x \\in \\mathbb{R} : x<1 \\text{ or } x>2\\}", "set-builder, colon, or"),
    ("x \\ge 2", "\\left\\{ x \\,|\\, x \\geq 2 \\right\\}", "set-builder, bar"),
]

CASES_NONE = [
    ("5", "\\frac{1}{0}", "division by zero"),
    ("", "5", "empty gold"),
    ("B", "42", "choice letter gold, value pred"),
]


@pytest.fixture(scope="module")
def checker() -> AnswerChecker:
    return AnswerChecker(use_cache=False)


@pytest.mark.parametrize("gold, pred, why", CASES_TRUE, ids=[c[2] for c in CASES_TRUE])
def test_equivalent(checker, gold, pred, why):
    v = checker.compare(gold, pred)
    assert v.equivalent is True, (why, v)


@pytest.mark.parametrize("gold, pred, why", CASES_FALSE, ids=[c[2] for c in CASES_FALSE])
def test_not_equivalent(checker, gold, pred, why):
    v = checker.compare(gold, pred)
    assert v.equivalent is False, (why, v)


@pytest.mark.parametrize("gold, pred, why", CASES_SETS, ids=[c[2] for c in CASES_SETS])
def test_sets_of_reals_equivalent(checker, gold, pred, why):
    assert checker.compare(gold, pred).equivalent is True, why
    assert checker.compare(pred, gold).equivalent is True, ("swapped", why)


@pytest.mark.parametrize("gold, pred, why", CASES_NONE, ids=[c[2] for c in CASES_NONE])
def test_cannot_tell(checker, gold, pred, why):
    v = checker.compare(gold, pred)
    assert v.equivalent is None, (why, v)
    assert v.reason


def test_fast_paths_do_not_need_math_verify(checker):
    # the common pipeline shapes are decided without math-verify
    for gold, pred in [("25", "025"), ("27", "27.0"), ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("B", "(B)"),
                       ("1, -2", "-2, 1"), ("x^2+2x+1", "(x+1)^2"), ("25", "24")]:
        assert checker.compare(gold, pred).reason.startswith("fast:"), (gold, pred)


# ------------------------------------------------------------------ multi-form golds
def test_gold_alternatives_rule():
    assert gold_alternatives(".2,  1/5") == [".2", "1/5"]
    assert gold_alternatives(".0714,  1/14") == [".0714", "1/14"]
    # lists, tuples and sets are not alternatives
    assert gold_alternatives("1, 2") is None
    assert gold_alternatives("1, -2") is None
    assert gold_alternatives("(1, 2)") is None
    assert gold_alternatives("\\{1,2\\}") is None
    assert gold_alternatives("3, 3.5") is None
    assert gold_alternatives("x, 1/5") is None


# ------------------------------------------------------------------ MATH answer types
def _math_answers() -> list[dict]:
    path = shared_data_dir() / "answer_equivalence" / "math_test_answer_types.json"
    return [r for r in json.loads(path.read_text(encoding="utf-8")) if isinstance(r["answer"], str)]


def _restyle(answer: str) -> str:
    """Same answer, different presentation: \\dfrac, spaces after commas and
    around + and =, inside $\\boxed{}$."""
    v = answer.replace("\\frac", "\\dfrac")
    v = re.sub(r",(?!\\!)", ", ", v)
    v = re.sub(r"(?<=[0-9a-z}])([+=])(?=[0-9a-z\\])", r" \1 ", v)
    return "$\\boxed{" + v + "}$"


def test_math_answer_types_restyled_are_equivalent(checker):
    rows = _math_answers()
    assert len(rows) > 4900
    failures = []
    by_type: dict[str, int] = {}
    for r in rows:
        by_type[r["human_type"]] = by_type.get(r["human_type"], 0) + 1
        v = checker.compare(r["answer"], _restyle(r["answer"]))
        if v.equivalent is not True:
            failures.append((r["human_type"], r["answer"], v))
    assert {"Real", "Expression", "Vector", "Set", "Matrix", "Interval", "Complex"} <= set(by_type)
    print(f"restyled MATH answers: {len(rows) - len(failures)}/{len(rows)} equivalent; failures: {failures[:10]}")
    assert len(failures) <= len(rows) // 200, failures[:20]


def _as_models_write(answer: str, kind: str) -> list[tuple[str, str]]:
    """The same answer written the ways long-CoT models write final answers in plain text: Unicode radicals, sqrt(),
    Python powers, degree signs, "percent", an "x = " prefix, a sentence around it, the solutions of a Set answer as
    "x = a or x = b", an Interval as an inequality, a column vector as a tuple."""
    out = [("sentence", f"The answer is ${answer}$.")]
    if "\\sqrt{" in answer:
        out.append(("unicode_sqrt", re.sub(r"\\sqrt\{(\w+)\}", r"√\1", answer)))
        out.append(("ascii_sqrt", re.sub(r"\\sqrt\{(\w+)\}", r"sqrt(\1)", answer)))
    if kind == "Expression" and "\\" not in answer and "=" not in answer and re.search(r"\^\{?\d+\}?", answer):
        out.append(("python_power", re.sub(r"\^\{?(\d+)\}?", r"**\1", answer)))
    if "^\\circ" in answer:
        out.append(("degree_sign", answer.replace("^\\circ", "°")))
    if answer.endswith("\\%"):
        out.append(("percent_word", answer[:-2] + " percent"))
    if kind == "Real" and re.fullmatch(r"-?[\d\\{}a-z.+\- ]+", answer) and "=" not in answer:
        out.append(("x_equals", "x = " + answer))
    if kind == "Set" and "," in answer and not re.search(r"[()\[\]<>=]|\\!|text", answer):
        out.append(("or_assignments", " or ".join("x = " + p.strip() for p in answer.split(","))))
    m = re.fullmatch(r"\s*(?:\\left)?([(\[])\s*([^,()\[\]]+?)\s*,\s*([^,()\[\]]+?)\s*(?:\\right)?([)\]])\s*", answer)
    if kind == "Interval" and m and "\\infty" not in answer:
        lo = " < " if m.group(1) == "(" else " \\le "
        hi = " < " if m.group(4) == ")" else " \\le "
        out.append(("inequality", m.group(2) + lo + "x" + hi + m.group(3)))
    m = re.fullmatch(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}", answer.strip())
    if m and "&" not in m.group(1):
        out.append(("vector_as_tuple", "(" + ", ".join(c.strip() for c in m.group(1).split("\\\\") if c.strip()) + ")"))
    return out


def test_math_answers_as_models_write_them_are_equivalent(checker):
    rows = _math_answers()
    tried: dict[str, int] = {}
    failures = []
    for r in rows:
        for how, pred in _as_models_write(r["answer"], r["human_type"]):
            tried[how] = tried.get(how, 0) + 1
            v = checker.compare(r["answer"], pred)
            if v.equivalent is not True:
                failures.append((how, r["answer"], pred, v))
    # every form is exercised on real answers
    assert all(tried.get(k, 0) >= 10 for k in ("unicode_sqrt", "ascii_sqrt", "python_power", "degree_sign",
                                                "x_equals", "or_assignments", "inequality", "vector_as_tuple")), tried
    print(f"MATH answers as models write them: {sum(tried.values()) - len(failures)}/{sum(tried.values())}; {tried}")
    assert len(failures) <= sum(tried.values()) // 500, failures[:20]


def test_math_answers_with_one_digit_changed_are_not_equivalent(checker):
    """Every MATH answer of any type with its first digit changed (a base-6 numeral's digit, a radicand, a matrix
    entry, an interval end): never equivalent. Found: math-verify drops a base subscript ("2112_6" = "2112_7") and
    misreads unbraced arguments ("\\frac \\pi4 + 2 - \\sqrt2" = "... - \\sqrt3")."""
    wrong, checked = [], 0
    for r in _math_answers():
        m = re.search(r"\d", r["answer"])
        if m is None:
            continue
        d = int(m.group())
        pred = r["answer"][: m.start()] + str(d + 1 if d < 9 else 7) + r["answer"][m.end():]
        checked += 1
        v = checker.compare(r["answer"], pred)
        if v.equivalent is True:
            wrong.append((r["answer"], pred, v))
    assert checked > 4800
    assert not wrong, wrong[:10]


def test_math_real_answers_shifted_are_not_equivalent(checker):
    rows = [r for r in _math_answers() if r["human_type"] == "Real"]
    checked = 0
    wrong = []
    for r in rows:
        try:
            n = parse_number(r["answer"])
        except ZeroDivisionError:
            continue
        if n is None or n.percent:
            continue
        shifted = n.value + 1
        pred = str(shifted) if shifted.denominator == 1 else f"\\frac{{{shifted.numerator}}}{{{shifted.denominator}}}"
        v = checker.compare(r["answer"], pred)
        checked += 1
        if v.equivalent is not False:
            wrong.append((r["answer"], pred, v))
    assert checked > 3000
    assert not wrong, wrong[:10]


def test_math_structured_answers_mutated_are_not_equivalent(checker):
    """Swap the first two items of every Vector answer with distinct items,
    and move the first number of every Interval answer: must be False."""
    rows = _math_answers()
    checked = 0
    wrong = []
    for r in rows:
        a = r["answer"]
        if r["human_type"] == "Vector" and re.fullmatch(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", a):
            x, y = re.fullmatch(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", a).groups()
            if x == y:
                continue
            pred = f"({y}, {x})"
        elif r["human_type"] == "Interval" and re.search(r"-?\d+", a):
            m = re.search(r"-?\d+", a)
            pred = a[: m.start()] + str(int(m.group()) + 100) + a[m.end():]
        else:
            continue
        v = checker.compare(a, pred)
        checked += 1
        if v.equivalent is not False:
            wrong.append((a, pred, v))
    assert checked > 50
    assert not wrong, wrong[:10]


# ------------------------------------------------------------------ API contract
def test_verdict_is_frozen_and_three_valued():
    v = Verdict(None, "x")
    with pytest.raises(Exception):
        v.equivalent = True  # type: ignore[misc]
    assert compare("2", "2").equivalent is True
    assert compare("2", "3").equivalent is False


def test_cache_counts_hits_and_misses():
    c = AnswerChecker(cache_size=4)
    c.compare("1", "1.0")
    c.compare("1", "1.0")
    c.compare("1", "2")
    info = c.cache_info()
    assert (info.hits, info.misses) == (1, 2)
    for i in range(10):
        c.compare(str(i), str(i))
    assert c.cache_info().currsize == 4
    nocache = AnswerChecker(use_cache=False)
    nocache.compare("1", "1.0")
    nocache.compare("1", "1.0")
    assert nocache.cache_info().hits == 0


def test_checker_pickles_without_its_cache():
    c = AnswerChecker(timeout_s=1.5, cache_size=10)
    c.compare("1", "1")
    c2 = pickle.loads(pickle.dumps(c))
    assert (c2.timeout_s, c2.cache_size, c2.use_cache) == (1.5, 10, True)
    assert c2.cache_info().currsize == 0
    assert c2.compare("\\frac{1}{2}", "0.5").equivalent is True


def test_non_string_inputs_give_cannot_tell():
    c = AnswerChecker()
    assert c.compare(None, "1").equivalent is None  # type: ignore[arg-type]
    assert c.compare("1", 1).equivalent is None  # type: ignore[arg-type]


def test_invalid_arguments():
    with pytest.raises(ValueError):
        AnswerChecker(timeout_s=0)
    with pytest.raises(ValueError):
        AnswerChecker(isolation="threads")  # type: ignore[arg-type]


def test_parse_number_exact_values():
    assert parse_number("025").value == 25
    assert parse_number("27.0").value == 27 and not parse_number("27.0").exact
    assert parse_number("0.\\overline{3}").value == Fraction(1, 3)
    assert parse_number("1.5\\times10^{3}").value == 1500
    assert parse_number("x+1") is None
    with pytest.raises(ZeroDivisionError):
        parse_number("\\frac{1}{0}")


# ------------------------------------------------------------------ vs plain math-verify
# Pairs from the bench's pipeline workload (real Sky-T1 / math500 / SAT data)
# on which we and plain math-verify disagree: (gold, pred, our verdict,
# how math-verify is called, why ours is right).
DISAGREEMENTS = [
    ("\\frac{14}{3}", "\\dfrac{14}{3}", True, "literal",
     "bare LaTeX without $ is not extracted by math-verify at all, so it answers False"),
    ("B", "B) All fourth-grade students at the school", True, "wrapped",
     "a choice letter followed by the option text is that choice"),
    (".3833,  23/60", "\\dfrac{23}{60}", True, "wrapped",
     "the SAT gold lists accepted forms; .3833 is 23/60 rounded"),
    ("9", "9customers", True, "wrapped", "a unit word glued to the number"),
    ("1e-8", "10\\times10^{-9}", True, "wrapped", "1e-8 is read by math-verify as 1*e - 8"),
    ("\\frac{e^{2it}}{(2+2i)}+Ce^{-2t}", "(\\frac{1}{4}-\\frac{1}{4}i)e^{2it}+Ce^{-2t}", True, "wrapped",
     "1/(2+2i) = (1-i)/4: an identity the numeric probe confirms and simplify misses"),
    ("\\frac{1}{2a}(\\exp{a*t}-\\exp{-a*t})", "x(t)=\\frac{1}{a}\\sinh(at)", True, "wrapped",
     "(e^{at}-e^{-at})/(2a) = sinh(at)/a"),
    ("7\\pi", "7", False, "literal", "math-verify extracts only the 7 from the bare gold"),
    ("1+2\\sqrt{3}", "1", False, "literal", "math-verify extracts only the 1 from the bare gold"),
    ("1.22", "1.22\\times10^{-18}", False, "literal", "math-verify drops the power of ten from the bare pred"),
    ("5x-7y+11z+4=0", "0", False, "literal", "an equation is not its right-hand side"),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 + \\frac{1}{\\mathrm{e}}", False, "wrapped",
     "math-verify cuts both at \\mathrm{e} and compares 1 with 1"),
    ("12", "12^{", None, "wrapped", "a truncated answer cannot be read; math-verify takes the 12"),
]


@pytest.mark.parametrize("gold, pred, ours, how, why", DISAGREEMENTS, ids=[d[4][:40] for d in DISAGREEMENTS])
def test_documented_disagreements_with_plain_math_verify(checker, gold, pred, ours, how, why):
    v = checker.compare(gold, pred)
    assert v.equivalent is ours, (why, v)
    from math_verify import parse, verify

    g, p = (gold, pred) if how == "literal" else (f"${gold}$", f"${pred}$")
    theirs = bool(verify(parse(g), parse(p)))
    if theirs is ours:
        pytest.skip(f"math-verify now agrees ({why})")
    assert theirs is not ours
