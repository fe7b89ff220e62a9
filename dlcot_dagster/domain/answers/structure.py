"""Shape of a short answer: scalar, list, tuple, set, interval (union) or
matrix, found with bracket matching only (no parsing of the elements)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import clean_latex, outer_brackets, split_top_level

__all__ = ["Shape", "shape_of"]

_MATRIX_RE = re.compile(
    r"^\\begin\{(?P<env>[pbvBV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(?P<body>.*)\\end\{(?P=env)\}$",
    re.DOTALL,
)
_CUP_RE = re.compile(r"\\cup(?![a-zA-Z])|\u222a")
_AND_RE = re.compile(r"\s+(?:and|or)\s+|\s*,\s*(?:and|or)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Shape:
    """``kind``: ``scalar``, ``list`` (unbracketed, unordered), ``set``,
    ``tuple`` (round or angle brackets), ``interval`` (a bracket pair with two
    items whose brackets may differ: ``[a,b)``), ``union`` (of intervals) or
    ``matrix`` (``items`` are rows joined by ``&``-separated cells).
    ``left``/``right`` hold the bracket characters."""

    kind: str
    items: tuple[str, ...]
    left: str = ""
    right: str = ""
    rows: tuple[tuple[str, ...], ...] = ()


def _matrix(s: str) -> Shape | None:
    m = _MATRIX_RE.match(s.strip())
    if m is None:
        return None
    body = m.group("body").strip()
    rows = [r.strip() for r in re.split(r"\\\\", body)]
    while rows and not rows[-1]:
        rows.pop()
    cells = tuple(tuple(c.strip() for c in r.split("&")) for r in rows)
    if not cells or len({len(r) for r in cells}) != 1:
        return None
    return Shape("matrix", tuple(c for r in cells for c in r), rows=cells)


def shape_of(answer: str) -> Shape:
    s, _pct, _deg = clean_latex(answer)
    mat = _matrix(s)
    if mat is not None:
        return mat
    # an outer (..) around a matrix: "(\begin{pmatrix}..\end{pmatrix})"
    ob = outer_brackets(s)
    if ob is not None and ob[0] == "(" and ob[2] == ")":
        mat = _matrix(ob[1])
        if mat is not None:
            return mat
    if _CUP_RE.search(s):
        parts = [p.strip() for p in _CUP_RE.split(s)]
        if all(outer_brackets(p) is not None for p in parts):
            return Shape("union", tuple(parts))
        return Shape("scalar", (s,))
    if ob is not None:
        left, inner, right = ob
        items = tuple(split_top_level(inner))
        if left == "\\{":
            return Shape("set", items, left, right)
        if left == "<":
            return Shape("tuple", items, "(", ")")
        if len(items) == 2 and (left, right) != ("(", ")"):
            return Shape("interval", items, left, right)
        if (left, right) == ("(", ")") and len(items) >= 2:
            return Shape("tuple", items, left, right)
        if len(items) >= 2:
            return Shape("tuple", items, left, right)
        return Shape("scalar", (s,))
    items = split_top_level(s)
    if len(items) == 1:
        items = [p for p in _AND_RE.split(s)]
    items = [i for i in (x.strip() for x in items) if i]
    if len(items) >= 2:
        return Shape("list", tuple(items))
    return Shape("scalar", (s,))
