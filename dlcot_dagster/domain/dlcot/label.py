"""Label solutions and checks against the reference answer.

* ``correct``: the segment's answer is equivalent to the reference
  (checker verdict ``True``).
* ``incorrect``: the checker says ``False``.
* ``incomplete``: no answer in the segment (``label_reason="no_answer"``),
  or the checker cannot tell (``label_reason="undecided:<reason>"``). An
  undecided answer is never counted as correct or incorrect: such a segment
  cannot end the trunk, and it is not dropped as an incorrect check.

The conclusion is labelled the same way (its answer is the final answer);
restatement and understanding get no label.

Inheritance: when no solution/check is ``correct`` but the conclusion is,
the conclusion states what the last piece of reasoning derived (often the
last step itself is in the conclusion: "123/392, so 123 + 392 = 515"). The
last solution/check that states an answer (else the last one) then takes the
conclusion's answer (``answer_inherited=True``, ``label_reason=
"inherited_from_conclusion"``) and is labelled ``correct``. Likewise, when
neither the body nor a conclusion is correct but the record's
``final_response`` (the text after the thinking) states a correct final
answer, that answer is inherited (``"inherited_from_final_response"``; the
answer span is then empty, at the end of the thinking): Gemini and Sky-T1
traces often never state the answer inside the thinking.
"""

from __future__ import annotations

from .answers_in_text import CheckerLike
from .types import AnswerSpan, Label, SegmentedTrace, SegmentKind

LABELLED_KINDS = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION, SegmentKind.CONCLUSION)


class RuleLabeler:
    def __init__(self, checker: CheckerLike):
        self.checker = checker

    def label(self, trace: SegmentedTrace) -> SegmentedTrace:
        ref = trace.record.reference_answer
        segs = []
        for sg in trace.segments:
            if sg.kind not in LABELLED_KINDS:
                segs.append(sg)
                continue
            if sg.answer is None:
                segs.append(sg.model_copy(update={"label": Label.INCOMPLETE, "label_reason": "no_answer"}))
                continue
            if not ref.strip():
                segs.append(sg.model_copy(update={"label": Label.INCOMPLETE, "label_reason": "undecided:no_reference"}))
                continue
            v = self.checker.compare(ref, sg.answer.text)
            eq = getattr(v, "equivalent", None)
            reason = str(getattr(v, "reason", ""))
            if eq is True:
                lab, why = Label.CORRECT, reason
            elif eq is False:
                lab, why = Label.INCORRECT, reason
            else:
                lab, why = Label.INCOMPLETE, f"undecided:{reason}"
            segs.append(sg.model_copy(update={"label": lab, "label_reason": why}))
        body = [sg for sg in segs if sg.kind in (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)]
        concl = [sg for sg in segs if sg.kind is SegmentKind.CONCLUSION]
        if body and concl and concl[0].label is Label.CORRECT and not any(sg.label is Label.CORRECT for sg in body):
            with_answer = [sg for sg in body if sg.answer is not None]
            heir = with_answer[-1] if with_answer else body[-1]
            segs[heir.idx] = heir.model_copy(
                update={
                    "answer": concl[0].answer,
                    "answer_inherited": True,
                    "label": Label.CORRECT,
                    "label_reason": "inherited_from_conclusion",
                }
            )
        elif (
            body
            and not any(sg.label is Label.CORRECT for sg in segs)
            and trace.record.final_response
            and ref.strip()
        ):
            from dlcot_dagster.domain.answers import extract_final_answer

            fa = extract_final_answer(trace.record.final_response)
            if fa is not None and fa.text and getattr(self.checker.compare(ref, fa.text), "equivalent", None) is True:
                with_answer = [sg for sg in body if sg.answer is not None]
                heir = with_answer[-1] if with_answer else body[-1]
                n = len(trace.record.thinking)
                segs[heir.idx] = heir.model_copy(
                    update={
                        "answer": AnswerSpan(text=fa.text, start=n, end=n, kind="final_response", explicit=True),
                        "answer_inherited": True,
                        "label": Label.CORRECT,
                        "label_reason": "inherited_from_final_response",
                    }
                )
        return trace.model_copy(update={"segments": segs})
