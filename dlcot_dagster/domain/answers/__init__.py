"""Answer extraction and equivalence checking (plain Python, no Dagster).

Public API::

    from dlcot_dagster.domain.answers import (
        AnswerMatch, find_answers, extract_final_answer,
        Verdict, AnswerChecker, compare,
    )
"""

from .extract import AnswerMatch, extract_final_answer, find_answers
from .verdict import Verdict
from .verify import AnswerChecker, compare

__all__ = ["AnswerMatch", "find_answers", "extract_final_answer", "Verdict", "AnswerChecker", "compare"]
