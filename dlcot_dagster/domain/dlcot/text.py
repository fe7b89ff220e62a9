"""Low-level text helpers shared by the DLCoT rule engine.

Everything here works on character offsets into the ORIGINAL text and runs
in linear time (single regex passes), so 1 MB traces and 10k-fold loops stay
cheap.

* :func:`split_units` cuts a thinking text into *units*: lines (each with its
  trailing newline run), plus sentence-level cuts in front of a cue word
  ("Wait", "Alternatively", "Let me verify", "So the answer is" ...) in the
  middle of a line.  Display math (``\\[ … \\]``, ``$$ … $$``) is never cut.
  Units cover the text exactly; segments are built from whole units.
* :func:`cue_of` classifies the opening of a unit (reflect / verify / switch /
  conclude / restart).
* :func:`sentence_spans` gives sentence spans inside a range (used by the
  corrector).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Iterator

# --------------------------------------------------------------------------- cues

# Leading decoration that may precede a cue word ("**Wait**", "- Alternatively", "> Hmm").
_LEAD = r"[\s*_>#\-–—•]*"

#: A reflection / hesitation marker ("Wait", "Hmm", "Hold on", ...).
REFLECT_RE = re.compile(
    _LEAD
    + r"(?:(?:but|and|oh|ah|okay|ok|no|so)[,!.]?\s+)?"
    r"(?:wait\b|hmm+\b|hold on\b|hang on\b|oh\b|oops\b|ah\b|uh\b|actually\b|no,|nope\b|whoa\b|on second thought\b|"
    r"alternatively\b|again,|(?:same|similar) (?:answer|result)\b|but let me\b|let me (?:think|see|reconsider)\b)",
    re.IGNORECASE,
)

# Anything that may sit between a reflect marker and the real cue: "Wait, but let me", "Hmm, maybe I should".
_PRE = (
    r"(?:(?:wait|hmm+|hold on|hang on|but|and|so|okay|ok|now|oh|actually|also|again|well|alright|"
    r"however|though|still|first|finally|just|maybe|perhaps|a second|a minute|a moment|"
    r"to be (?:safe|sure|thorough)|for (?:safety|completeness)|i think|i should|i need to|"
    r"i want to|we should|we need to|it'?s? (?:good|wise|better) to)[\s,.!:;\-—]*)*"
)

#: Re-checking what was found (verification cue).
VERIFY_RE = re.compile(
    _LEAD
    + _PRE
    + r"(?:"
    r"let(?: me|'s| us)\s+(?:(?:just|quickly|now|also|again|carefully|first)\s+)?(?:verify|check|re-?check|double[- ]?check|"
    r"confirm|make sure|re-?verify|re-?examine|cross[- ]?check|sanity[- ]?check|test|validate|plug|substitute|"
    r"re-?calculate|re-?compute|recount|re-?do|re-?evaluate|go back|look back|review|see if (?:this|that|it) "
    r"(?:makes sense|works|is (?:correct|right))|see if (?:i|we) (?:made|did))|"
    r"to (?:verify|check|confirm|double[- ]?check|be sure|make sure)|"
    r"(?:verif(?:y|ying|ication)|check(?:ing)?|double[- ]?check(?:ing)?|sanity check|cross[- ]?check(?:ing)?)\b[:,]?|"
    r"(?:i|we) (?:should|could|can|will|need to|want to|must) (?:verify|check|double[- ]?check|confirm|make sure)|"
    r"plugging (?:back|in|it)|substituting back|is (?:this|that) (?:correct|right)\?|"
    r"does (?:this|that) (?:make sense|check out|work)|"
    r"(?:just )?to be (?:thorough|safe|sure|certain)|"
    r"another (?:check|way to (?:check|verify|confirm))|"
    r"let(?: me|'s| us)\s+(?:just\s+|also\s+|now\s+)?(?:ensure|re-?read|reconsider|think (?:if|whether|again)|"
    r"see (?:if|whether) there|consider (?:potential|possible|any|whether))|"
    r"(?:a |one )?(?:final|one more|one last|last|quick|another) (?:check|sanity check|verification)\b|"
    r"consider(?:ing)? (?:potential|possible) (?:pitfalls|errors|issues|mistakes|misunderstandings|edge cases)|"
    r"(?:are there |is there )?(?:any|possible|potential) (?:subtleties|pitfalls|edge cases|special cases)\b|"
    r"re-?read(?:ing)? (?:the )?(?:problem|question|statement)|"
    r"(?:to )?recap\b|in case (?:i|we) (?:overlooked|missed|made|got)|"
    r"(?:just )?(?:one more|another) thought\b|"
    r"is (?:this|that|it) (?:correct|right|consistent)\b|"
    # a question that doubts the result: "Is there a higher possible GCD?", "But could there be a smaller m?"
    r"(?:is|are|could|can) there (?:be )?(?:any(?:thing)?|a|an|another|other|some)\b[^.?!\n]{0,120}\?|"
    r"what about\b[^.?!\n]{0,120}\?|is (?:that|this) (?:all|it)\?"
    r")",
    re.IGNORECASE,
)

#: Clear switch to another approach (splits solutions before the first answer).
SWITCH_RE = re.compile(
    _LEAD
    + _PRE
    + r"(?:"
    r"alternatively\b[,:]?\s*(?:,\s*)?(?:maybe|perhaps|let(?: me|'s| us)|i (?:could|can|might|will|should)|"
    r"we (?:could|can|might|will|should)|think|consider|use|using|approach|another|one (?:could|can)|"
    r"there(?:'s| is)|is there|instead|if (?:i|we)|suppose|to (?:solve|find|compute))|"
    r"(?:another|a different|an alternative|a better|a simpler|a smarter|a cleaner|a more (?:direct|efficient|systematic)|"
    r"other) (?:approach|way|method|strategy|idea|thought|angle|technique|tactic|route|perspective)|"
    r"let(?: me|'s| us) (?:try|use|think of|consider|take|attempt) (?:a |an )?(?:different|another|alternative|new|other|"
    r"better|simpler|more direct|fresh)\b|"
    r"let(?: me|'s| us) (?:think about|approach) (?:this|it|the problem) (?:differently|another way|from (?:a|another) "
    r"(?:different )?(?:angle|perspective))|"
    r"let(?: me|'s| us) (?:start over|restart|start again|start from scratch|begin again|try again from (?:the )?"
    r"(?:start|beginning|scratch))|starting over|start(?:ing)? from scratch|"
    r"instead,? (?:let(?: me|'s| us)|i (?:could|can|will)|we (?:could|can|will)|maybe|perhaps)|"
    r"(?:maybe|perhaps) (?:there(?:'s| is)|i can find|we can find) (?:a|an) (?:better|simpler|smarter|easier|different|"
    r"alternative|more (?:direct|elegant|efficient)) (?:way|approach|method)|"
    r"(?:method|approach|solution) (?:2|3|4|two|three|four)\b|"
    r"could (?:we|i) (?:solve|do|approach|compute|find|tackle|get) (?:this|it|the (?:answer|result))\b|"
    r"(?:is there|there (?:might|may|could) be|maybe there'?s?) (?:another|a different|an alternative|a simpler|a "
    r"better|a quicker|an easier) (?:way|approach|method)|"
    r"alternative (?:way|approach|method|solution|view|perspective|derivation)\b|"
    # "Let me see if another approach might get the same answer", "But let's see if there's another way to look at it"
    r"let(?: me|'s| us) see if (?:there(?:'s| is) )?(?:another|a different|an alternative|a simpler|a better|other) "
    r"(?:approach|way|method)"
    r")",
    re.IGNORECASE,
)

#: Statement of the final result ("So the answer is ...", "**Final Answer**").
CONCLUDE_RE = re.compile(
    _LEAD
    + r"(?:"
    r"(?:\*\*)?final answer\b|"
    r"(?:(?:so|thus|therefore|hence|consequently|in conclusion|in summary|to summarize|to conclude|overall|"
    r"finally|after all (?:that|this)|all in all|putting (?:it|this|everything) together|so,? after all)[\s,:]+)?"
    r"(?:i (?:think|believe|am confident|'m confident)(?: that)?\s+)?"
    r"(?:the|my|our) (?:final |correct |required |desired )?answer (?:is|should be|would be|must be|=|:)|"
    r"(?:so|thus|therefore|hence),?\s+(?:the )?(?:final )?answer\b|"
    r"answer:|"
    r"(?:the )?final (?:result|value|answer) (?:is|=)|"
    r"\\boxed\{|\$\\boxed\{|\\\(\\boxed\{|\\\[\s*\\boxed\{"
    r")",
    re.IGNORECASE,
)

#: A sentence that retracts what was just stated: only clear error admissions, not reasoning by
#: contradiction ("that can't be right", "impossible" are left alone: they are part of the argument).
RETRACT_RE = re.compile(
    r"(?:"
    r"\b(?:that|this|it)(?:'s| is| was) (?:not (?:right|correct)|wrong|incorrect|a mistake|an error|a miscalculation|"
    r"a typo|mistaken)\b|"
    r"\bi (?:made|have made|must have made|think i made|might have made|probably made) (?:a |an )?(?:small |"
    r"silly |careless |big )?(?:mistake|error|miscalculation|arithmetic (?:error|mistake)|typo|slip)\b|"
    r"\bmy (?:mistake|bad|error|miscalculation)\b|"
    r"\bi (?:miscalculated|messed up|got (?:that|this|it) wrong|was wrong|misread|miscounted|mis-?computed|"
    r"mis-?added|mis-?multiplied)\b|"
    r"\b(?:oops|scratch that|strike that|correction:)|"
    r"(?:^|[\s,])no,? (?:that(?:'s| is)|this is|it(?:'s| is)) (?:not (?:right|correct)|wrong|incorrect)\b"
    r")",
    re.IGNORECASE,
)

#: Weak retraction ("Wait, no", "No, wait"): in R1-style traces it precedes a real correction only part of the
#: time (often the model re-checks and confirms), so it is used only when ``CorrectorConfig.weak_retractions``.
WEAK_RETRACT_RE = re.compile(
    r"(?:(?:^|[\s,*])no,? wait\b|\bwait,? no\b(?![- ]?(?:one|body|thing|where|matter|longer|more|less|other|two|three)))",
    re.IGNORECASE,
)

#: What may precede a retraction phrase at the start of its sentence ("Wait, ", "Hmm, but "); not "So": "So that's
#: wrong" concludes an argument by contradiction rather than retracting the sentence before.
RETRACT_LEAD_RE = re.compile(r"[\W_]*(?:(?:wait|hmm+|but|and|oh|ah|okay|ok|actually|hold on|oops|ugh|no)\b[\W_]*)*",
                             re.IGNORECASE)

#: Back-references to earlier text that may have been pruned away.
BACKREF_RE = re.compile(
    r"(?:"
    r"\b(?:same|similar) (?:answer|result|value|conclusion|thing|approach|method|steps?|calculation|computation|"
    r"reasoning|as (?:before|earlier|above|previously))\b|"
    r"\bas (?:i |we )?(?:did|found|computed|calculated|showed|shown|established|derived|got|saw|noted|mentioned|"
    r"said|had|obtained|determined|concluded)?\s*(?:it )?(?:before|earlier|above|previously)\b|"
    r"\b(?:the|my|our) (?:previous|earlier|other|original|initial|prior) (?:approach|method|attempt|"
    r"calculation|computation|result|answer|mistake|error|solution|reasoning|way|idea|try|derivation|"
    r"conclusion|thought)s?\b|"
    r"\b(?:earlier|before|previously|above),? (?:i|we) (?:had|got|found|thought|computed|calculated|said|assumed|made|"
    r"considered|used|did|wrote|concluded|derived|obtained|determined)\b|"
    r"\bwhat (?:i|we) (?:had|got|found|did|computed|calculated) (?:before|earlier|previously)\b|"
    r"\b(?:again|once more)[,.!]?\s*(?:the )?same\b|"
    r"\b(?:that|which|this) (?:matches|confirms|agrees with|contradicts|is consistent with|is inconsistent with)\b|"
    r"\b(?:checks out|checked out|confirms it)\b|\bconsistent with (?:before|earlier|the previous|what)\b|"
    r"\bwhen (?:i|we) (?:substituted|plugged|checked|verified|tested|tried|double[- ]checked|re-?checked|recomputed)\b|"
    r"\b(?:after|upon) (?:checking|verifying|double[- ]checking|re-?checking|substituting|plugging)\b|"
    r"\beverything (?:checks|checked|is consistent|was consistent|matches|matched|adds up|added up)\b|"
    r"\b(?:all|both) (?:the |my |of the )?(?:checks|methods|approaches|verifications|tests|calculations)\b|"
    r"\bboth (?:methods|approaches|ways)\b|\bthe two (?:methods|approaches|ways|results)\b|"
    r"\b(?:my|the) (?:earlier|previous|initial|first) (?:mistake|error|confusion)\b"
    r")",
    re.IGNORECASE,
)

#: Leading connectives that cannot start a text after a join ("Wait, ", "But wait, ", "Alternatively, ", "Hmm. ").
DANGLING_RE = re.compile(
    r"(?:[*_]{0,2}"
    r"(?:but|and|oh|hmm+|wait|hold on|hang on|alternatively|actually|no|nope|however|though|anyway|again|also|"
    r"still|yes|yeah|right|indeed|oops|ah|aha|instead|wait a (?:second|minute|moment|sec)|on second thought|"
    r"on the other hand|in any case|even so|then again|just to (?:be safe|be sure|confirm|double-check|make sure)|"
    r"(?:that|this|which) (?:means|gives|matches|confirms))"
    r"[*_]{0,2}\s*[,.!:;\-—…]+[*_]{0,2}[ \t]*)+",
    re.IGNORECASE,
)

#: A dangling connective without punctuation ("But the", "Alternatively we"): stripped with its space.
DANGLING_BARE_RE = re.compile(r"(?:(?:but|and|alternatively|however|hmm+|wait)[ \t]+)+", re.IGNORECASE)

#: A trailing announcement whose promised content may be gone after a join ("Let me check:").
ANNOUNCE_RE = re.compile(
    r"^\W*(?:(?:wait|hmm+|but|so|and|okay|now|alternatively|hold on|actually|first|also)[\s,.!]+)*"
    r"(?:let(?: me|'s| us)|i(?:'ll| will| should| need to| want to| can| could)|we(?:'ll| will| should| need to| can| could)|"
    r"to)\s+(?:just\s+|quickly\s+|now\s+|also\s+|again\s+|first\s+)?"
    r"(?:verify|check|double[- ]?check|confirm|make sure|re-?check|re-?examine|re-?verify|cross[- ]?check|"
    r"try (?:a |an )?(?:different|another|alternative|other)|think (?:again|differently|about (?:it|this) (?:again|"
    r"differently|another way))|consider (?:another|a different|an alternative)|approach (?:it|this) (?:differently|"
    r"another way)|see if (?:there's|there is) (?:another|a different|a better))\b[^.?!]{0,80}[.:!…]*\s*$",
    re.IGNORECASE,
)

# Hedge words: an answer stated in a hedged sentence is not an answer reached.
HEDGE_RE = re.compile(
    r"\b(?:maybe|perhaps|might|could|probably|possibly|likely|presumably|guess|hunch|suspect|conjecture|suppose|assume|"
    r"assuming|if|whether|unless|"
    r"not|isn'?t|wasn'?t|can'?t|cannot|shouldn'?t|wouldn'?t|would|doubt|unsure|approximately|approx|"
    r"roughly|about|around|estimate|check|verify|wrong|incorrect|mistake|expected|hypothes\w*|assumption|option|"
    r"options|choices|either|or\s+\d)\b|\?|≈|~",
    re.IGNORECASE,
)


_CLAUSE_BREAK_RE = re.compile(r"[,;:(—]|\s(?:so|and|but|then|thus|hence|therefore|because|since)\s", re.IGNORECASE)


def clause_start(text: str, end: int) -> int:
    """Offset where the clause ending at ``end`` starts (after the last clause break before it)."""
    last = None
    for last in _CLAUSE_BREAK_RE.finditer(text, 0, end):
        pass
    if last is None:
        return 0
    k = last.end()
    while k < end and text[k] in " \t":
        k += 1
    return k


def hedged(text: str, start: int, end: int) -> bool:
    """Whether the clause of ``text[start:end]`` that ends at ``end`` (the answer) is hedged."""
    seg = text[start:end]
    last = None
    for last in _CLAUSE_BREAK_RE.finditer(seg):
        pass
    clause = seg[last.end() :] if last is not None else seg
    return HEDGE_RE.search(clause) is not None


def lower_case_twin(rx: re.Pattern) -> re.Pattern:
    """A case-sensitive copy of the IGNORECASE pattern ``rx``, for ``s.lower()`` of an ASCII string ``s`` (or for
    a text folded like ``correct._fold``, which maps every letter IGNORECASE equates with an ASCII one to it).

    ``rx`` must spell its letters in lower case and hold no non-ASCII character that IGNORECASE equates with an
    ASCII one (such as "ſ", "K" Kelvin sign; both checked here). Then the copy matches ``s.lower()`` exactly where
    ``rx`` matches ``s`` (same spans), only faster: the regex engine can test literal letters directly. Not for
    non-ASCII text, where IGNORECASE also equates "ſ" with "s", "K" with "k", ...
    """
    chars = re.sub(r"\\.", "", rx.pattern)  # escapes (\b, \s, \S, ...) mean the same on lowered text
    non_ascii = "".join(sorted({c for c in rx.pattern if not c.isascii()}))
    if (
        not rx.flags & re.IGNORECASE
        or any(c.isupper() for c in chars)
        or (non_ascii and re.search(f"[{re.escape(non_ascii)}]", string.ascii_letters, re.IGNORECASE))
    ):
        raise ValueError(f"not an IGNORECASE pattern in lower case: {rx.pattern[:60]!r}")
    return re.compile(rx.pattern, rx.flags & ~re.IGNORECASE)


# in priority order: switch > verify > conclude > reflect
_CUES = (("switch", SWITCH_RE), ("verify", VERIFY_RE), ("conclude", CONCLUDE_RE), ("reflect", REFLECT_RE))
_CUES_ASCII = tuple((name, lower_case_twin(rx)) for name, rx in _CUES)


def cue_of(text: str, pos: int = 0) -> str | None:
    """Class of the cue opening ``text[pos:]``: ``switch``, ``verify``, ``conclude``, ``reflect`` or None.

    Priority: switch > verify > conclude > reflect, i.e. "Wait, let me verify"
    is a verification cue and "Wait, another approach" a switch.
    """
    head = text[pos : pos + 200]
    cues = _CUES
    if head.isascii():  # most units: match the lowered text with the case-sensitive twins (same result, faster)
        head = head.lower()
        cues = _CUES_ASCII
    for name, rx in cues:
        if rx.match(head):
            return name
    return None


# --------------------------------------------------------------------------- units

# Cue words that may start a new unit in the middle of a line, after a sentence end.
# Only the match end (the cut) is used. The sentence end is matched rather than looked behind for, so that the regex
# engine can jump from one ".!?:)]" to the next instead of trying the whole pattern at every position; the ends are
# the same (the spaces are always right after such a character, which no other match contains).
_MIDLINE_CUE = re.compile(
    r"[.!?:)\]][ \t]+(?=(?:\*\*)?(?:Wait\b|But wait\b|Hmm+\b|Hold on\b|Alternatively\b|"
    r"(?:But )?[Ll]et me (?:just |quickly |also )?(?:verify|check|double[- ]?check|confirm|try|re-?check|make sure)|"
    r"(?:But )?[Ll]et's (?:just |quickly |also )?(?:verify|check|double[- ]?check|confirm|try|make sure)|Another (?:approach|way|"
    r"method)|Actually,|Oh,|Oops|No,|So,? the (?:final )?answer|Therefore,? the (?:final )?answer|Thus,? the "
    r"(?:final )?answer|Hence,? the (?:final )?answer|The (?:final )?answer is|Final Answer|To verify|To check|To confirm|"
    r"Just to (?:be|confirm|double|make|verify|check)|Double[- ]?check))"
)

_NEWLINE_RUN = re.compile(r"\n[ \t\r\n\u2028\u2029]*")
_DISPLAY_MATH = re.compile(r"\\\[.{0,4000}?\\\]|\$\$.{0,4000}?\$\$|```.{0,20000}?```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Unit:
    start: int
    end: int
    cue: str | None


def _protected(text: str) -> list[tuple[int, int]]:
    return [(m.start() + 1, m.end() - 1) for m in _DISPLAY_MATH.finditer(text)]


def split_units(text: str) -> list[Unit]:
    """Cut ``text`` into units that cover it exactly (see module docstring)."""
    n = len(text)
    if n == 0:
        return []
    # every cut lies strictly inside (0, n): both patterns consume at least one character before their end
    cuts = {m.end() for m in _NEWLINE_RUN.finditer(text)}
    cuts.update(m.end() for m in _MIDLINE_CUE.finditer(text))
    cuts.discard(n)
    if cuts:
        prot = _protected(text)
        if prot:
            # drop cuts strictly inside display math
            inside = set()
            sorted_cuts = sorted(cuts)
            j = 0
            for a, b in prot:
                while j < len(sorted_cuts) and sorted_cuts[j] <= a:
                    j += 1
                k = j
                while k < len(sorted_cuts) and sorted_cuts[k] < b:
                    inside.add(sorted_cuts[k])
                    k += 1
            cuts -= inside
    bounds = [0, *sorted(cuts), n]
    return [Unit(a, b, cue_of(text, a)) for a, b in zip(bounds, bounds[1:])]


# --------------------------------------------------------------------------- sentences

# A sentence ends after "." / "!" / "?" (plus closing quotes, brackets, emphasis) and spaces, or at a newline run.
# Only match ends are used. The end character is matched rather than looked behind for, so that the regex engine can
# jump from one ".!?\n" to the next instead of trying the whole pattern at every position; the ends are the same,
# except that a ".!?" right before the start of the scanned range is out of reach: see _SENT_END_AFTER_START.
_SENT_END = re.compile(r"[.!?\n](?:(?<=\n)[ \t\r\n\u2028\u2029]*|(?<=[.!?])[\"')\]*_]*[ \t]+)")
_SENT_END_AFTER_START = re.compile(r"[\"')\]*_]*[ \t]+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans covering ``text[start:end]`` exactly (trailing whitespace belongs to the sentence)."""
    end = len(text) if end is None else end
    if end <= start:
        return []
    # do not cut decimals such as "1. 5" are rare; "e.g. " is accepted as a cut
    ends = [m.end() for m in _SENT_END.finditer(text, start, end)]
    if 0 < start <= len(text) and text[start - 1] in ".!?":
        # the spaces right after a sentence end just before ``start`` form a sentence of their own; no _SENT_END
        # match starts inside them, so this end comes first
        m = _SENT_END_AFTER_START.match(text, start, end)
        if m is not None:
            ends.insert(0, m.end())
    # matches are non-empty and do not overlap: the ends increase strictly; one at ``end`` is no cut
    if ends and ends[-1] == end:
        ends.pop()
    bounds = [start, *ends, end]
    return list(zip(bounds, bounds[1:]))


def iter_sentences(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    yield from sentence_spans(text, start, end)


_WS = " \t\r\n\u2028\u2029\u00a0"


def rstrip_pos(text: str, start: int, end: int) -> int:
    """End offset of ``text[start:end]`` with trailing whitespace removed."""
    while end > start and text[end - 1] in _WS:
        end -= 1
    return end


def lstrip_pos(text: str, start: int, end: int) -> int:
    while start < end and text[start] in _WS:
        start += 1
    return start


def is_blank(text: str) -> bool:
    return not text.strip(_WS)
