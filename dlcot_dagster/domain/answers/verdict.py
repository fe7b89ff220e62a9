"""The three-valued result of an answer comparison."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Outcome of comparing a predicted answer with a reference.

    ``equivalent`` is ``True`` (equivalent), ``False`` (not equivalent) or
    ``None`` ("cannot tell": unparseable, timed out, refused as hostile).  A
    ``None`` verdict must never be counted as either of the other two.
    ``reason`` is a short machine-friendly explanation such as
    ``"fast:number"`` or ``"math_verify:timeout"``.
    """

    equivalent: bool | None
    reason: str

    @property
    def decided(self) -> bool:
        return self.equivalent is not None
