"""DLCoT rule engine on small hand-written traces: one test per cue / rule, plus robustness."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlcot_dagster.domain.dlcot import (
    Clusterer,
    DLCoTPolicy,
    Label,
    Labeler,
    Pruner,
    Rewriter,
    RuleClusterer,
    RuleLabeler,
    RulePruner,
    RuleRewriter,
    RuleSegmenter,
    RulesEngine,
    SampleStatus,
    Segment,
    SegmentedTrace,
    Segmenter,
    SegmentKind,
    TraceInput,
    run_dlcot,
    run_dlcot_batch,
    segment_trace,
    text_jaccard,
)


def rec(thinking: str, ref: str = "42", problem: str = "What is six times seven?", final: str | None = None, **kw):
    return TraceInput(id=kw.pop("id", "t"), teacher="hand", problem=problem, reference_answer=ref,
                      thinking=thinking, final_response=final, **kw)


def kinds(res):
    return [s.kind.value for s in res.segments]


def seg_text(r: TraceInput, s: Segment) -> str:
    return r.thinking[s.start : s.end]


SOLUTION = "We need the product. Compute 6 * 7 = 42. So the answer is 42.\n\n"
CHECK = "Let me verify: 7 + 7 + 7 + 7 + 7 + 7 = 42, and that matches.\n\n"
CONCL = "**Final Answer**\n\\boxed{42}"
# a check with a method of its own (substitution back into the question), unlike CHECK's re-computation
DISTINCT_CHECK = "Let me verify by plugging it back: 42 / 7 = 6 and 42 / 6 = 7, so it checks out.\n\n"


# ---------------------------------------------------------------------- segmentation


def test_five_parts_and_first_answer_ends_the_solution():
    r = rec(
        "Okay, so the problem asks: what is six times seven?\n\n"
        "Hmm, multiplication of two small numbers.\n\n"
        + SOLUTION
        + "Wait, let me double-check with addition: 6 + 6 + 6 + 6 + 6 + 6 + 6 = 42.\n\n"
        + "Alternatively, 7 * 6 = 7 * 5 + 7 = 35 + 7 = 42.\n\n"
        + CONCL
    )
    res = run_dlcot(r)
    assert kinds(res) == [
        "question_restatement",
        "problem_understanding",
        "solution",
        "verification",
        "verification",
        "conclusion",
    ]
    sol = res.segments[2]
    assert sol.answer is not None and sol.answer.text == "42" and sol.label is Label.CORRECT
    assert seg_text(r, sol).rstrip().endswith("So the answer is 42.")
    assert res.segments[-1].answer.kind == "boxed"
    assert res.status is SampleStatus.KEPT


def test_approach_switch_splits_solutions_and_abandoned_one_is_incomplete():
    first = (
        "Let me set up a table of multiples of six and look for the seventh entry, listing them one per line "
        "until I get there; 6, 12, 18, 24 and so on, which is slow but should eventually work for this problem.\n\n"
    )
    second = "Alternatively, maybe I can use 7 * 6 = 7 * 5 + 7 = 35 + 7 = 42. So the answer is 42.\n\n"
    r = rec(first + second + CONCL)
    res = run_dlcot(r, "first_correct_only")
    sols = [s for s in res.segments if s.kind is SegmentKind.SOLUTION]
    assert len(sols) == 2
    assert sols[0].label is Label.INCOMPLETE and sols[0].answer is None
    assert sols[1].label is Label.CORRECT and sols[1].cue == "switch"
    assert not sols[0].kept and sols[0].drop_reason == "incomplete_solution"
    # the kept approach no longer opens with a dangling "Alternatively,"
    assert res.corrected_thinking.startswith("Maybe I can use 7 * 6")
    assert any(e.reason == "dangling_connective" and e.removed.startswith("Alternatively") for e in res.edits)


def test_seeing_if_another_approach_works_is_a_switch():
    """Engine 0.3.35: "Let me see if another approach might get the same answer" opens a new approach (it was a mere
    reflection, so the check before it ran on into it)."""
    from dlcot_dagster.domain.dlcot.text import cue_of

    for s in ("Let me see if another approach might get the same answer, just to be thorough.",
              "But let's see if there's another way to look at it.", "Let me see if there is a simpler method."):
        assert cue_of(s) == "switch", s
    assert cue_of("Let me see if that works.") != "switch"
    check = "Wait, 6 * 7 = 42, yes. So, seems correct.\n\n"
    other = "Let me see if another approach might get the same answer. Add 7 six times: 7 + 7 + 7 + 7 + 7 + 7 = 42.\n\n"
    r = rec(SOLUTION + check + other + CONCL)
    checks = [seg_text(r, s) for s in run_dlcot(r, "none").segments if s.kind is SegmentKind.VERIFICATION]
    assert checks == [check, other]


def test_local_tactic_is_not_a_new_approach():
    body = (
        "Let x be the product we want, so x = 6 * 7 and we can expand it as six groups of seven items, "
        "which we will count carefully in the next few lines by adding groups one at a time.\n\n"
        "Maybe a better approach is to rearrange terms: 6 * 7 = 6 * 5 + 6 * 2 = 30 + 12 = 42. So the answer is 42.\n\n"
    )
    res = run_dlcot(rec(body + CONCL))
    assert [s.kind for s in res.segments].count(SegmentKind.SOLUTION) == 1


def test_segment_trace_empty_and_round_trip():
    assert segment_trace("") == []
    text = "A.\n\nWait, B.\n\nSo the answer is 3.\n\nHmm, let me check: 3.\n\n**Final Answer** \\boxed{3}"
    segs = segment_trace(text)
    assert "".join(text[s.start : s.end] for s in segs) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            ["Wait, ", "Alternatively, maybe ", "So the answer is 42. ", "Let me verify: ", "6 * 7 = 42", "\n\n",
             "\n", "Hmm.", " x = 5. ", "\\[ y = 2 \\]", "**Final Answer**\n\\boxed{42}", "é\u2028", "$$a$$", "no, wait"]
        ),
        max_size=40,
    )
)
def test_round_trip_property_on_generated_text(parts):
    text = "".join(parts)
    r = rec(text)
    res = run_dlcot(r)
    assert "".join(text[s.start : s.end] for s in res.segments) == text
    if res.status is SampleStatus.KEPT:
        assert len(res.corrected_thinking) <= len(text)
        assert res.answer_equivalent is True


# ---------------------------------------------------------------------- labels and clusters


def test_labels_correct_incorrect_incomplete():
    r = rec(
        "Compute 6 * 7 = 48. So the answer is 48.\n\n"
        "Wait, let me redo it with a different grouping of the factors into tens and units: 6 * 7 = 42. "
        "So the answer is 42.\n\n"
        "Hmm, let me think about whether there is any trick with the wording of the question here.\n\n" + CONCL
    )
    res = run_dlcot(r)
    body = [s for s in res.segments if s.kind in (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)]
    assert [s.label for s in body] == [Label.INCORRECT, Label.CORRECT, Label.INCOMPLETE]
    # the wrong first attempt is the same computation done wrong: the correct redo leads its cluster
    assert body[1].kept and not body[0].kept
    assert body[0].drop_reason == f"redundant_repeat_of:{body[1].idx}"


def test_a_different_wrong_approach_before_the_first_correct_stays_in_the_trunk():
    r = rec(
        "Maybe count by area: a 6 by 7 rectangle has perimeter 2 * (6 + 7) = 26 unit squares. So the answer is 26.\n\n"
        "Hmm, that counts the border, not the squares. Let me simply multiply: 6 * 7 = 42. So the answer is 42.\n\n"
        + CONCL
    )
    res = run_dlcot(r)
    body = [s for s in res.segments if s.kind in (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)]
    assert [s.label for s in body][:2] == [Label.INCORRECT, Label.CORRECT]
    # a distinct approach up to the first correct one is part of the trunk, wrong or not
    assert body[0].kept and body[1].kept


def test_undecided_checker_verdict_is_incomplete_not_correct():
    class Unsure:
        def compare(self, gold, pred):
            from dlcot_dagster.domain.answers import Verdict

            return Verdict(None, "test:unsure")

    res = run_dlcot(rec(SOLUTION + CONCL), checker=Unsure())
    labelled = [s for s in res.segments if s.label is not None]
    assert labelled and all(s.label is Label.INCOMPLETE for s in labelled)
    assert all(s.label_reason.startswith(("undecided:", "no_answer")) for s in labelled)
    assert res.status is SampleStatus.DROPPED and res.reason == "no_correct_solution"


def test_a_pass_of_affirmed_substitutions_is_one_check_and_new_work_after_an_answer_is_the_next():
    problem = "Find x and y with x + y = 10 and x - y = 4. What is x times y?"
    r = rec("We need x and y. Adding, 2x = 14, so x = 7 and y = 3. So the answer is 21.\n\n"
            "Let me check the equations.\n\nFirst equation: x + y = 7 + 3 = 10. That checks out.\n\n"
            "Second equation: x - y = 7 - 3 = 4, which is the given difference, and both values are whole numbers "
            "as well. That checks out.\n\n"
            "And 7 * 3 = 21 is the product. That checks out.\n\n"
            "Alternatively, by substitution: y = 10 - x, so x - (10 - x) = 4 and x = 7. So the answer is 21.\n\n"
            "Then from the first equation 2y = 10 - 4 = 6, so y = 3, and x + y = 7 + 3 = 10 and x - y = 7 - 3 = 4 "
            "hold for the pair (7, 3).\n\n"
            "**Final Answer**\n\\boxed{21}", ref="21", problem=problem)
    checks = [s for s in run_dlcot(r).segments if s.kind is SegmentKind.VERIFICATION]
    texts = [r.thinking[s.start:s.end] for s in checks]
    # the affirmed substitutions ("... That checks out.") are one pass; only an answer lets plain new work open a check
    assert len(checks) == 3, texts
    assert texts[0].startswith("Let me check") and "And 7 * 3 = 21" in texts[0]
    assert texts[1].startswith("Alternatively, by substitution")
    assert texts[2].startswith("Then from the first equation")


def test_an_announcement_belongs_to_the_check_it_announces():
    announce = "Wait, but just to be thorough, maybe I should check the whole thing once more in case I made a slip.\n\n"
    assert len(announce.strip()) > 80  # longer than a bare "Let me check." yet still no content of its own
    r = rec(SOLUTION + announce + DISTINCT_CHECK + CONCL)
    checks = [s for s in run_dlcot(r).segments if s.kind is SegmentKind.VERIFICATION]
    assert len(checks) == 1 and r.thinking[checks[0].start:checks[0].end] == announce + DISTINCT_CHECK
    # with a number of its own it is content: it stays a check
    numbered = announce.replace("once more", "once more from 6 * 7")
    checks = [s for s in run_dlcot(rec(SOLUTION + numbered + DISTINCT_CHECK + CONCL)).segments
              if s.kind is SegmentKind.VERIFICATION]
    assert len(checks) == 2


def test_a_question_doubting_the_result_opens_a_check():
    """"Is there a higher possible GCD?" after a settled check is a new check episode (engine 0.3.30), like a cue
    word would be; a question inside the same check's work is not."""
    doubt = "Is there any other pair of whole numbers with this product? 3 * 14 = 42 too, but 6 is given, so no.\n\n"
    r = rec(SOLUTION + CHECK + doubt + CONCL)
    checks = [seg_text(r, s) for s in run_dlcot(r).segments if s.kind is SegmentKind.VERIFICATION]
    assert checks == [CHECK, doubt]
    # a question that doubts nothing ("What is 6 * 7?") is no cue
    plain = "What is 6 * 7 again in tens? It is 4 tens and 2 ones, so 42.\n\n"
    r = rec(SOLUTION + CHECK + plain + CONCL)
    checks = [seg_text(r, s) for s in run_dlcot(r).segments if s.kind is SegmentKind.VERIFICATION]
    assert checks == [CHECK + plain]


def test_naming_the_option_of_the_answer_just_reached_is_its_wrap_up():
    """The guide: the computed value of a listed choice is the first answer and its letter right after it the
    wrap-up, also when announced as "Let me check the answer choices." (engine 0.3.30; SAT R1 traces)."""
    problem = ("A candle burns 1 ounce every 4 hours. How many hours does it take to burn 11 ounces?\n"
               "A) 15\nB) 24\nC) 44\nD) 48")
    sol = "Each ounce takes 4 hours, so 11 ounces take 11 * 4 = 44 hours.\n\n"
    for lookup in ("Let me check the answer choices. C is 44, so that should be the answer.\n\n",
                   "Let me check the answer choices.\n\nC) 44. So that is the one.\n\n"):
        check = "Let me verify: 44 / 4 = 11 ounces. That checks out.\n\n"
        r = rec(sol + lookup + check + "**Final Answer**\n\\boxed{C}", ref="C", problem=problem)
        segs = run_dlcot(r).segments
        solution = next(s for s in segs if s.kind is SegmentKind.SOLUTION)
        checks = [seg_text(r, s) for s in segs if s.kind is SegmentKind.VERIFICATION]
        assert seg_text(r, solution).endswith(lookup), seg_text(r, solution)
        assert checks == [check]
    # a lookup that names no option of the answer is a check of its own
    lookup = "Let me check the answer choices to see which are even.\n\n"
    r = rec(sol + lookup + "B) 24 and D) 48 are even, and 44 is even too.\n\n" + "**Final Answer**\n\\boxed{C}",
            ref="C", problem=problem)
    checks = [seg_text(r, s) for s in run_dlcot(r).segments if s.kind is SegmentKind.VERIFICATION]
    assert checks and checks[0].startswith(lookup)


def test_a_double_check_of_the_calculations_is_a_recomputation():
    from dlcot_dagster.domain.dlcot.method import check_type

    # the plural ("calculations") was missed before engine 0.3.30: a re-computation typed as "other"
    assert check_type("Let me double-check my calculations to make sure I didn't make a mistake.") == "recompute"
    assert check_type("Let me recheck the computations above.") == "recompute"
    assert check_type("Let me double-check the calculation.") == "recompute"


def test_repeated_checks_cluster_and_repeats_are_dropped():
    other = "Wait, as a sanity check by estimation: 6 * 7 is 6 * 6 + 6 = 36 + 6 = 42, consistent.\n\n"
    again = DISTINCT_CHECK.replace("Let me verify by plugging it back", "Let me double-check by plugging it back")
    r = rec(SOLUTION + DISTINCT_CHECK + again + other + DISTINCT_CHECK + CONCL)
    res = run_dlcot(r)
    checks = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert len(checks) == 4
    first, second, third, fourth = checks
    assert second.cluster == first.idx and fourth.cluster == first.idx
    assert third.cluster == third.idx
    assert first.kept and third.kept
    assert second.drop_reason == fourth.drop_reason == f"redundant_repeat_of:{first.idx}"
    assert res.corrected_thinking.count("so it checks out") == 1
    # none keeps them all
    assert run_dlcot(r, "none").corrected_thinking.count("so it checks out") == 3


def test_a_check_redoing_the_trunks_computation_repeats_the_trunk():
    res = run_dlcot(rec(SOLUTION + "Let me recompute it: 6 * 7 = 42. Yes.\n\n" + DISTINCT_CHECK + CONCL))
    sol = next(s for s in res.segments if s.kind is SegmentKind.SOLUTION)
    recompute, substitution = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert recompute.drop_reason == f"redundant_repeat_of:{sol.idx}"
    assert substitution.kept and substitution.cluster == substitution.idx


def test_an_alternative_announced_but_not_carried_out_is_a_repeat():
    """Engine 0.3.34: "Alternatively, perhaps I could ..." that names a method, computes nothing new and reaches no
    answer brings no method of its own (25 of the 28 such checks kept before were annotated redundant)."""
    named = ("Alternatively, perhaps I could use repeated addition instead. "
             "But the multiplication is standard, so I think it's fine.\n\n")
    res = run_dlcot(rec(SOLUTION + named + DISTINCT_CHECK + CONCL))
    sol = next(s for s in res.segments if s.kind is SegmentKind.SOLUTION)
    announced, substitution = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert announced.drop_reason == f"redundant_repeat_of:{sol.idx}"
    assert substitution.kept
    # carried out, with values of its own, it is a new method and stays
    done = "Alternatively, by repeated addition: 7 + 7 = 14, 14 + 7 = 21, 21 + 21 = 42. Same.\n\n"
    res = run_dlcot(rec(SOLUTION + done + CONCL))
    (carried,) = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert carried.kept and carried.cluster == carried.idx


def test_a_check_questioning_a_new_assumption_is_a_distinct_approach():
    from dlcot_dagster.domain.dlcot.method import assumption_topics

    assert assumption_topics("But wait: could the integers be negative? The problem does not say.") == {"negative"}
    assert assumption_topics("Is there overlap in counting? No, each pair is counted once.") == {"overlap"}
    # the words of a computation are not questions about an assumption
    assert assumption_topics("Could I recall it? Their slopes would be negative reciprocals.") == set()
    assert assumption_topics("So 6 * 7 = 42, which is positive 42.") == set()
    problem = "Two whole numbers multiply to 42 and one of them is 6. What is the other times six?"
    # the same computation as the trunk, but under another assumption
    ask = "Wait, could the numbers be negative? Then the product is still 42, so the answer is 42.\n\n"
    again = "Wait, could the numbers be negative? No, whole numbers. So the answer is still 42.\n\n"
    res = run_dlcot(rec(SOLUTION + ask + again + CONCL, problem=problem))
    first, second = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    # the first check of an assumption is a new approach (DLCoT's "different assumptions"); asking it again is not
    assert first.kept and first.cluster == first.idx
    assert not second.kept and second.drop_reason == f"redundant_repeat_of:{first.idx}"


def test_the_first_test_of_the_other_options_is_a_distinct_approach():
    """The guide's rule (round 6, SAT): testing the other options the first time is distinct even when it reuses the
    trunk's numbers; testing them again is a repeat."""
    problem = ("A candle burns 1 ounce every 4 hours. How many hours does it take to burn 11 ounces?\n"
               "A) 15\nB) 24\nC) 44\nD) 48")
    work = "11 * 4 = 44, 44 / 4 = 11, 44 / 11 = 4, 10 * 4 = 40, 40 + 4 = 44"
    sol = f"Each ounce takes 4 hours, so looking at the options: {work}. So the answer is C.\n\n"
    # the options reuse every number of the trunk: by evidence alone they would be a repeat
    options = f"Let me check the other options. A is 15, B is 24, D is 48, and {work}. So C.\n\n"
    again = f"Wait, let me check the other options again. A is 15, B is 24, D is 48, and {work}. So C.\n\n"
    res = run_dlcot(rec(sol + options + again + "**Final Answer**\n\\boxed{C}", ref="C", problem=problem))
    first, second = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert first.kept and first.cluster == first.idx
    assert not second.kept and second.drop_reason.startswith("redundant_repeat_of:")


def test_same_text_with_different_answers_does_not_cluster():
    a = "Let me recount the groups of seven carefully: 6 * 7 = 42. So the answer is 42.\n\n"
    b = "Let me recount the groups of seven carefully: 6 * 7 = 48. So the answer is 48.\n\n"
    res = run_dlcot(rec(SOLUTION + a + b + a + CONCL))
    checks = [s for s in res.segments if s.kind is SegmentKind.VERIFICATION]
    assert checks[1].cluster == checks[1].idx  # different (wrong) answer: not a repeat
    assert checks[0].cluster == checks[2].cluster != checks[0].idx  # the same answer again: repeats
    assert checks[1].drop_reason == "incorrect_check"


def test_jaccard_normalizes_math_tokens():
    assert text_jaccard("Wait, let me check: 18*1.5 = 27", "Let me double-check: 18 * 1.5 = 27.") == 1.0
    assert text_jaccard("x₇₆ - x₁₆ = 41/800", "x_{76} - x_{16} = 41/800") == 1.0
    assert text_jaccard("so 30t = 45 and t = 1.5", "the area of the circle is pi r squared") == 0.0


# ---------------------------------------------------------------------- correction


def test_retraction_and_the_retracted_claim_are_removed():
    r = rec("Compute 6 * 7. That gives 48. Wait, that's wrong. 6 * 7 = 42. So the answer is 42.\n\n" + CONCL)
    res = run_dlcot(r)
    out = res.corrected_thinking
    assert "48" not in out and "wrong" not in out
    assert "6 * 7 = 42. So the answer is 42." in out
    reasons = {sp.reason.split(":")[0] for sp in res.removed_spans}
    assert {"retraction", "retracted_by"} <= reasons


def test_retraction_keeps_the_corrected_computation_in_the_same_sentence():
    r = rec("Compute 6 * 7, which is 48. Wait, that's wrong: 6 * 7 = 42 since 6 * 5 = 30 and 6 * 2 = 12. "
            "So the answer is 42.\n\n" + CONCL)
    out = run_dlcot(r).corrected_thinking
    assert "which is 48" not in out and "wrong" not in out
    assert "6 * 7 = 42 since 6 * 5 = 30" in out


def test_weak_wait_no_is_only_used_when_enabled():
    from dlcot_dagster.domain.dlcot import CorrectorConfig, EngineConfig

    text = "Compute 6 * 7, which is 48. Wait, no, 6 * 7 = 42 since 6 * 5 = 30 and 6 * 2 = 12. So the answer is 42.\n\n"
    r = rec(text + CONCL)
    assert "which is 48. Wait, no, 6 * 7 = 42" in run_dlcot(r).corrected_thinking
    strict = EngineConfig(corrector=CorrectorConfig(weak_retractions=True))
    out = run_dlcot(r, config=strict).corrected_thinking
    assert "which is 48" not in out and "Wait, no" not in out and "6 * 7 = 42 since" in out


def test_mid_sentence_retraction_leaves_the_previous_sentence():
    r = rec("Then n = 6 * 7 = 42. We divide by 10, as asked, oh wait, that's wrong, we divide by 1. "
            "So the answer is 42.\n\n" + CONCL)
    out = run_dlcot(r).corrected_thinking
    assert "Then n = 6 * 7 = 42." in out


def test_i_made_a_mistake_is_removed_but_a_doubt_is_not():
    r = rec("6 * 7 = 36 + 7 = 43. I made a mistake: 6 * 7 = 36 + 6 = 42. So the answer is 42.\n\n" + CONCL)
    out = run_dlcot(r).corrected_thinking
    assert "43" not in out and "mistake" not in out and "6 * 7 = 36 + 6 = 42" in out
    r2 = rec("6 * 7 = 42. Maybe I made a mistake? Adding six sevens gives 42 again. So the answer is 42.\n\n" + CONCL)
    out2 = run_dlcot(r2).corrected_thinking
    assert "Maybe I made a mistake?" in out2


def test_contradicted_value_is_removed():
    r = rec("Let p = 6 * 7, so p = 48. Actually, p = 42 because 6 * 7 is 42. So the answer is 42.\n\n" + CONCL)
    res = run_dlcot(r)
    assert "p = 48" not in res.corrected_thinking
    assert "p = 42 because" in res.corrected_thinking
    assert any(sp.reason.startswith("contradicted_by:") for sp in res.removed_spans)


def test_dangling_wait_at_a_join_is_dropped():
    kept_check = "Wait, another way: 42 / 7 = 6, so the product checks.\n\n"
    r = rec(SOLUTION + CHECK + CHECK + kept_check + CONCL)
    res = run_dlcot(r)
    out = res.corrected_thinking
    assert "Wait, another way" not in out
    assert "Another way: 42 / 7 = 6" in out
    edit = next(e for e in res.edits if e.reason == "dangling_connective")
    assert edit.removed == "Wait, a" and edit.inserted == "A"
    assert r.thinking[edit.pos : edit.pos + len(edit.removed)] == edit.removed


def test_back_reference_after_a_join_is_dropped():
    tail = ("Wait, same answer as before. Also, as a sanity check by estimation, 42 is even, as expected for six "
            "times an odd number.\n\n")
    r = rec(SOLUTION + DISTINCT_CHECK + DISTINCT_CHECK + tail + CONCL)
    res = run_dlcot(r)
    out = res.corrected_thinking
    assert "same answer as before" not in out
    assert "42 is even, as expected" in out
    assert any(sp.reason == "back_reference" for sp in res.removed_spans)


def test_back_reference_to_a_removed_check_in_the_conclusion_is_dropped():
    concl = "Therefore, the answer is 42. It helps that when I substituted back, everything checked out.\n\n" + CONCL
    r = rec(SOLUTION + DISTINCT_CHECK + concl)
    res = run_dlcot(r, "first_correct_only")
    assert res.segments[-1].kind is SegmentKind.CONCLUSION and res.segments[-1].start == len(SOLUTION + DISTINCT_CHECK)
    assert "substituted back" not in res.corrected_thinking
    assert "Therefore, the answer is 42." in res.corrected_thinking
    assert "substituted back" in run_dlcot(r).corrected_thinking  # the check is kept: nothing to repair


def test_plain_text_math_is_recognised_as_an_implicit_answer():
    r = rec("The legs are 7 and 10 - 3, hmm, so by Pythagoras DE = √(100 - 49), so DE is √51.\n\n"
            "Let me verify: 51 + 49 = 100.\n\n**Final Answer**\n\\boxed{\\sqrt{51}}",
            ref="\\sqrt{51}", problem="Find DE in the right triangle.")
    res = run_dlcot(r)
    sol = next(s for s in res.segments if s.kind is SegmentKind.SOLUTION)
    assert sol.answer is not None and sol.answer.kind == "implicit" and sol.answer.text == "\\sqrt{51}"
    assert sol.label is Label.CORRECT


def test_policy_none_changes_nothing():
    r = rec("  " + SOLUTION + CHECK + CHECK + "Wait, that's wrong. " + CONCL + "\n")
    res = run_dlcot(r, "none")
    assert res.corrected_thinking == r.thinking.strip()
    assert res.edits == [] and all(s.kept for s in res.segments)


def test_final_response_is_used_when_it_carries_the_answer():
    r = rec(SOLUTION + CONCL, final="Six times seven is $\\boxed{42}$.")
    res = run_dlcot(r)
    assert res.final_answer_source == "final_response" and res.final_text == r.final_response
    r2 = rec(SOLUTION + CONCL, final="I am not sure, maybe \\boxed{41}.")
    res2 = run_dlcot(r2)
    assert res2.final_answer_source == "built" and res2.final_text == "The final answer is $\\boxed{42}$."
    assert res2.messages[1]["content"].endswith("</think>\n\nThe final answer is $\\boxed{42}$.")


def test_trunk_is_kept_when_the_final_answer_is_wrong():
    # the model reaches 42, then talks itself into 48: DLCoT keeps the correct trunk
    r = rec(SOLUTION + "Hmm, maybe it is 6 * 8 = 48 instead. So the answer is 48.\n\n**Final Answer**\n\\boxed{48}")
    res = run_dlcot(r)
    assert res.status is SampleStatus.KEPT
    assert res.final_answer == "42" and "48" not in res.corrected_thinking
    concl = res.segments[-1]
    assert concl.kind is SegmentKind.CONCLUSION and concl.drop_reason == "incorrect_conclusion"
    # the keep-everything baseline drops the sample instead
    assert run_dlcot(r, "none").reason == "final_answer_not_equivalent"


# ---------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "name,text,ref,status,reason",
    [
        ("empty", "", "42", "dropped", "empty_thinking"),
        ("no_answer", "I am thinking about it.\n\nStill thinking.\n\nHmm.", "42", "dropped", "no_answer_found"),
        ("wait_10k_lines", "Wait,\n" * 10000, "42", "dropped", "no_answer_found"),
        ("wait_10k_inline", "Wait, " * 10000, "42", "dropped", "no_answer_found"),
        ("loop_after_answer", SOLUTION + "Wait,\n\n" * 10000 + CONCL, "42", "kept", None),
        ("one_mb", ("Let me compute 6 * 7 = 42. Wait, maybe I should check again.\n\n" * 17000)[:1_000_000], "42",
         "kept", None),
        ("one_mb_no_answer", ("Hmm, let me think about the geometry here. " * 24000)[:1_000_000], "42", "dropped",
         "no_answer_found"),
        ("unclosed_braces", "\\boxed{" * 50000, "42", "dropped", "no_answer_found"),
    ],
)
def test_robust_inputs_finish_quickly_with_clear_status(name, text, ref, status, reason):
    t0 = time.perf_counter()
    res = run_dlcot(rec(text, ref=ref, id=name))
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, f"{name} took {elapsed:.1f}s"
    assert res.status.value == status and res.reason == reason
    assert "".join(text[s.start : s.end] for s in res.segments) == text
    if status == "kept":
        assert res.corrected_chars < 0.01 * len(text) + 500  # the loop is pruned away
        assert res.answer_equivalent is True


def test_unclosed_trace_drops_its_cut_off_tail():
    r = rec(SOLUTION + "Let me verify with a table of sixes: 6, 12, 18, 24, 30, 36, 4", thinking_closed=False)
    res = run_dlcot(r)
    assert res.status is SampleStatus.KEPT
    assert res.segments[-1].drop_reason == "truncated_tail"
    assert res.final_text == "The final answer is $\\boxed{42}$."
    assert run_dlcot(r, DLCoTPolicy(require_closed_thinking=True)).reason == "thinking_not_closed"


# ---------------------------------------------------------------------- engine interface


def test_rule_steps_implement_the_protocols():
    assert isinstance(RuleSegmenter(), Segmenter)
    assert isinstance(RuleLabeler(None), Labeler)
    assert isinstance(RuleClusterer(), Clusterer)
    assert isinstance(RulePruner(), Pruner)
    assert isinstance(RuleRewriter(), Rewriter)


def test_a_step_can_be_swapped():
    """A stand-in for an LLM segmenter: one solution ending at the boxed answer, then the conclusion."""

    class OneSolution:
        def segment(self, record) -> SegmentedTrace:
            r = TraceInput.of(record)
            cut = r.thinking.index("**Final Answer**")
            from dlcot_dagster.domain.dlcot import AnswerSpan

            box = r.thinking.index("\\boxed")
            ans = AnswerSpan(text="42", start=box, end=len(r.thinking), kind="boxed")
            return SegmentedTrace(
                record=r,
                segments=[
                    Segment(idx=0, kind=SegmentKind.SOLUTION, start=0, end=cut, answer=ans, answer_inherited=True),
                    Segment(idx=1, kind=SegmentKind.CONCLUSION, start=cut, end=len(r.thinking), answer=ans),
                ],
            )

    engine = RulesEngine("default", segmenter=OneSolution())
    res = engine.run(rec(SOLUTION + CHECK + CONCL))
    assert res.status is SampleStatus.KEPT and len(res.segments) == 2
    assert res.corrected_thinking == (SOLUTION + CHECK + CONCL).strip()


def test_batch_and_plain_objects():
    class Obj:  # any object with the record's attributes works (e.g. schema.TraceRecord)
        id = "obj"
        teacher = "hand"
        problem = "What is six times seven?"
        reference_answer = "42"
        thinking = SOLUTION + CONCL
        final_response = None
        thinking_closed = True

    out = run_dlcot_batch([Obj(), {"id": "d", "reference_answer": "42", "thinking": SOLUTION + CONCL}, rec("")])
    assert [r.status.value for r in out] == ["kept", "kept", "dropped"]
    assert out[0].id == "obj" and out[1].id == "d"


def test_trace_record_from_the_schema_is_accepted():
    from dlcot_dagster.domain.ingest.schema import Layout, TraceRecord

    tr = TraceRecord(id="x", teacher="hand", problem="What is six times seven?", reference_answer="42",
                     thinking=SOLUTION + CONCL, final_response=None, source_file="f.jsonl", source_line=1,
                     layout=Layout.PLAIN, thinking_closed=True)
    res = run_dlcot(tr)
    assert res.status is SampleStatus.KEPT and res.id == "x"
    assert res.to_json() == run_dlcot(tr).to_json()
