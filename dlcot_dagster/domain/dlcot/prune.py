"""Decide which segments (and samples) to keep, from labels + clusters + policy.

The *trunk* ends at the first solution or check labelled ``correct``. See
:mod:`.policy` for what each mode keeps. Reasons recorded on dropped
segments:

``question_restatement`` / ``understanding_disabled`` / ``conclusion_disabled``
    part switched off by the policy
``redundant_repeat_of:<idx>``
    same cluster as the segment ``idx`` (default mode); the first correct segment always leads its cluster, so
    an earlier attempt of the same method is a repeat of it
``empty_check``
    a check after the first correct solution with no content at all (only
    fillers such as a bare "Wait,"; default mode)
``incorrect_check``
    a check after the first correct solution that reaches a wrong answer
``incorrect_solution`` / ``incomplete_solution`` / ``incorrect_check_before_first_correct`` / ``incomplete_check_before_first_correct``
    trunk segments before the first correct one (first_correct_only)
``truncated_tail``
    the last check of a thinking block that was never closed (it is cut off
    mid-sentence; default mode)
``after_first_correct``
    anything between the first correct solution and the conclusion (first_correct_only)
``drift_to_incorrect_conclusion``
    checks after the last kept correct segment when the conclusion is dropped
    for a wrong/unverified answer (they argue towards it; default mode)
``incorrect_conclusion`` / ``unverified_conclusion``
    a conclusion whose answer is wrong / cannot be checked (the final answer
    is then rebuilt from the trunk's correct answer)
``sample_dropped``
    every segment of a dropped sample

Sample-level reasons: ``empty_thinking``, ``thinking_not_closed`` (only when
the policy requires it), ``no_answer_found``, ``no_correct_solution``.
"""

from __future__ import annotations

from .policy import DLCoTPolicy, PruningMode
from .similarity import tokens
from .types import Label, SampleStatus, SegmentedTrace, SegmentKind

BODY = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)


def first_correct_index(trace: SegmentedTrace) -> int | None:
    for sg in trace.segments:
        if sg.kind in BODY and sg.label is Label.CORRECT:
            return sg.idx
    return None


def _final_response_answer(rec) -> bool:
    if not rec.final_response or not rec.final_response.strip():
        return False
    from dlcot_dagster.domain.answers import extract_final_answer

    fa = extract_final_answer(rec.final_response)
    return fa is not None and bool(fa.text) and fa.kind != "last_line"


def _drop_all(trace: SegmentedTrace, reason: str) -> SegmentedTrace:
    segs = [sg.model_copy(update={"kept": False, "drop_reason": "sample_dropped"}) for sg in trace.segments]
    return trace.model_copy(update={"segments": segs, "status": SampleStatus.DROPPED, "reason": reason})


def _drop_drift(segs: list) -> list:
    """When the conclusion is dropped for a wrong/unverified answer, drop the kept checks that drift towards it:
    every check after the last kept correct segment."""
    concl = [sg for sg in segs if sg.kind is SegmentKind.CONCLUSION]
    if not concl or concl[0].kept or concl[0].drop_reason not in ("incorrect_conclusion", "unverified_conclusion"):
        return segs
    last_ok = max(sg.idx for sg in segs if sg.kind in BODY and sg.kept and sg.label is Label.CORRECT)
    return [
        sg.model_copy(update={"kept": False, "drop_reason": "drift_to_incorrect_conclusion"})
        if sg.kind in BODY and sg.kept and sg.idx > last_ok
        else sg
        for sg in segs
    ]


def _first_correct_leads(trace: SegmentedTrace, first: int) -> SegmentedTrace:
    """The first correct segment is the member its cluster keeps: when a clusterer put it in the group of an earlier
    (abandoned or wrong) attempt, the whole group is re-led by it, so that the earlier members are dropped as its
    repeats instead of the segment that reaches the answer."""
    lead = trace.segments[first].cluster
    if lead is None or lead == first:
        return trace
    segs = [sg.model_copy(update={"cluster": first}) if sg.cluster == lead else sg for sg in trace.segments]
    return trace.model_copy(update={"segments": segs})


class RulePruner:
    def prune(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> SegmentedTrace:
        rec = trace.record
        if not rec.thinking.strip():
            return _drop_all(trace, "empty_thinking")
        if policy.require_closed_thinking and not rec.thinking_closed:
            return _drop_all(trace, "thinking_not_closed")
        trunk_end = first_correct_index(trace)
        if trunk_end is None and policy.require_correct_solution:
            if not any(sg.answer is not None for sg in trace.segments) and not _final_response_answer(rec):
                return _drop_all(trace, "no_answer_found")
            return _drop_all(trace, "no_correct_solution")

        mode = policy.mode
        if trunk_end is not None:
            trace = _first_correct_leads(trace, trunk_end)
        # a thinking block that was never closed ends mid-sentence: its last segment is cut off
        truncated_tail = None
        if not rec.thinking_closed and trace.segments and trace.segments[-1].kind in BODY:
            truncated_tail = trace.segments[-1].idx
        out = []
        for sg in trace.segments:
            keep, why = True, None
            if sg.kind is SegmentKind.QUESTION_RESTATEMENT:
                keep, why = (True, None) if policy.keep_restatement else (False, "question_restatement")
            elif sg.kind is SegmentKind.PROBLEM_UNDERSTANDING:
                keep, why = (True, None) if policy.keep_understanding else (False, "understanding_disabled")
            elif sg.kind is SegmentKind.CONCLUSION:
                if not policy.keep_conclusion:
                    keep, why = False, "conclusion_disabled"
                elif mode is not PruningMode.NONE and sg.answer is not None and sg.label is not Label.CORRECT:
                    keep = False
                    why = "incorrect_conclusion" if sg.label is Label.INCORRECT else "unverified_conclusion"
            elif mode is PruningMode.NONE:
                pass
            elif trunk_end is None:
                # only reachable when require_correct_solution is off: keep distinct segments
                if sg.cluster is not None and sg.cluster != sg.idx:
                    keep, why = False, f"redundant_repeat_of:{sg.cluster}"
            elif mode is PruningMode.FIRST_CORRECT_ONLY:
                if sg.idx < trunk_end:
                    what = "solution" if sg.kind is SegmentKind.SOLUTION else "check"
                    lab = "incorrect" if sg.label is Label.INCORRECT else "incomplete"
                    suffix = "" if sg.kind is SegmentKind.SOLUTION else "_before_first_correct"
                    keep, why = False, f"{lab}_{what}{suffix}"
                elif sg.idx > trunk_end:
                    keep, why = False, "after_first_correct"
            else:  # default
                if truncated_tail is not None and sg.idx == truncated_tail and sg.idx > trunk_end:
                    keep, why = False, "truncated_tail"
                elif sg.cluster is not None and sg.cluster != sg.idx:
                    keep, why = False, f"redundant_repeat_of:{sg.cluster}"
                elif sg.idx > trunk_end and sg.answer is None and not tokens(rec.thinking[sg.start : sg.end]):
                    keep, why = False, "empty_check"
                elif sg.idx > trunk_end and sg.label is Label.INCORRECT and policy.drop_incorrect_checks:
                    keep, why = False, "incorrect_check"
            out.append(sg.model_copy(update={"kept": keep, "drop_reason": why}))
        if mode is PruningMode.DEFAULT and trunk_end is not None:
            out = _drop_drift(out)
        return trace.model_copy(update={"segments": out, "status": SampleStatus.KEPT, "reason": None})
