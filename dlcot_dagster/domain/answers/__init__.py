"""Answer extraction and equivalence checking (plain Python, no Dagster).

Public API (stable; other packages code against exactly this)::

    from dlcot_dagster.domain.answers import (
        AnswerMatch, find_answers, extract_final_answer,
        Verdict, AnswerChecker, compare,
    )

* ``AnswerMatch(text, start, end, kind)`` - one answer statement; ``kind`` in
  ``boxed``, ``final_answer``, ``answer_is``, ``hash``, ``choice``,
  ``last_line``.
* ``find_answers(text)`` - every statement, ordered, non-overlapping, no
  last-line fallback; regex pre-scan plus one linear brace-matching pass.
* ``extract_final_answer(text)`` - last ``\\boxed{}`` (adjacent boxes merged),
  then ``**Final Answer**``, "the answer is", ``#### N``, choice letter,
  last line; ``None`` for empty text.
* ``Verdict(equivalent, reason)`` - ``equivalent`` is True / False / None
  (cannot tell: unparseable, timed out, refused).  None is never either.
* ``AnswerChecker(timeout_s=2.0, cache_size=65536, use_cache=True)`` -
  ``.compare(gold, pred)``, ``.cache_info()``; thread-safe, picklable,
  time-boxed.  ``compare(gold, pred)`` uses a per-process default checker.

Layout (small modules, like math-verify's own):

``extract``    statements in text            ``verdict``   the Verdict type
``normalize``  presentation-free strings     ``numeric``   exact numbers (Fraction)
``structure``  lists/sets/tuples/intervals/matrices
``probe``      numeric identity test of LaTeX expressions (own parser, no sympy)
``fastpath``   the cheap checks in front of math-verify
``sides``      what of each side goes to which stage
``guard``      refusal of hostile inputs     ``symbolic``  the math-verify call
``runner``     time boxes: SIGALRM in the main thread, killable worker
               subprocesses (``_worker``) elsewhere
``cache``      thread-safe LRU               ``verify``    AnswerChecker
``cli``        ``compare_file`` for ``dlcot answers compare``

Documented rules: gold answers listing accepted forms (``.2,  1/5``) - see
:mod:`.fastpath`; safety of math-verify's ``ExprExtractionConfig`` (it calls
``parse_expr`` only on digit/operator strings) - see :mod:`.symbolic`; float
tolerance - see :func:`.numeric.numbers_equal`.
"""

from .extract import AnswerMatch, extract_final_answer, find_answers
from .verdict import Verdict
from .verify import AnswerChecker, compare

__all__ = ["AnswerMatch", "find_answers", "extract_final_answer", "Verdict", "AnswerChecker", "compare"]
