"""Has the visitor finished? A verdict on the words said so far, for the end of a turn.

The fast rule tier of semantic end of turn (``voice.pipeline.turn_end`` runs it on a speculative
transcript taken at a short pause). Pure and fast (a few µs): no model, English rules.

* ``INCOMPLETE``: the words trail off into more (a conjunction, a preposition, an article, a filler
  such as "um", "my name is", a number or a name being read out, a thinking phrase): wait longer.
* ``COMPLETE``: a question, a short answer ("yes", "no thanks"), or a sentence the speech-to-text
  model closed with "." or "!": answer after a shorter silence. Where the model punctuated ("?", ".",
  "!"), a final pronoun, auxiliary or stranded preposition does not make the words unfinished ("Who am
  I speaking to?"): only a conjunction, an article, a filler or a preposition that cannot end does.
* ``UNSURE``: anything else (most statements: "i need a table" may go on "for four"): the
  assistant's usual end-of-turn silence applies.

LiveKit's turn detector and Pipecat's Smart Turn frame the question the same way (a probability
that the turn is over, turned into a shorter or longer wait); this tier trades their models for
rules a tenant can read.
"""

from __future__ import annotations

import enum
import re


class Verdict(enum.StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    UNSURE = "unsure"


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A last word that announces more.
_CONJUNCTIONS = _words(
    "and or but because so if that which who whom whose when while although though unless than whether nor "
    "since till until where"
)
_PREPOSITIONS = _words(
    "for to at on in of with about from by into onto as before after between per via without within through "
    "during towards toward near under over against among around across instead"
)
_DETERMINERS = _words("a an the my your our their his her its this these those some any each every another")
_FILLERS = _words("um umm uh uhh uhm er erm hmm hm mm ah eh well like")
# Subjects, auxiliaries and verbs that need what follows ("we are", "i want", "it's").
_OPEN_VERBS = _words(
    "i we you he she they it i'm we're you're they're it's that's there's is are was were am be been being "
    "would could can will shall should may might must do does did have has had want need like get got "
    "i'd i'll we'd we'll let's gonna wanna dot"
)
_TRAILING = _CONJUNCTIONS | _PREPOSITIONS | _DETERMINERS | _FILLERS | _OPEN_VERBS
# Last words that cannot close a sentence even where the speech-to-text model put "?", "." or "!" after
# them (a pronoun, an auxiliary or a stranded preposition can: "Where are you?", "Who am I speaking to?").
_CANNOT_END = _words(
    "and or but because if although unless than whether nor a an the my your our their every "
    "um umm uh uhh uhm er erm per via between among during towards toward within"
)
# Phrases at the end of the words that say "wait, there is more".
_THINKING = (
    "let me think",
    "let me see",
    "let me check",
    "you know",
    "i mean",
    "hold on",
    "one second",
    "one moment",
    "just a second",
    "how do you say",
    "what's it called",
    "i was wondering",
)
# Where a run of digits or letters is being read out, it may go on at any pause.
_READING_OUT = re.compile(
    r"\b(number|phone|mobile|reference|code|postcode|zip|card|email|e-mail|address|spelled|spell|that's|"
    r"registration|account|order|booking)\b"
)
_NUMBER_WORDS = _words(
    "zero oh one two three four five six seven eight nine ten eleven twelve double triple hundred thousand"
)
_SHORT_ANSWERS = frozenset(
    {
        "yes",
        "yeah",
        "yep",
        "yup",
        "no",
        "nope",
        "okay",
        "ok",
        "sure",
        "fine",
        "great",
        "perfect",
        "right",
        "correct",
        "exactly",
        "maybe",
        "thanks",
        "thank you",
        "no thanks",
        "no thank you",
        "yes please",
        "okay sure",
        "okay thanks",
        "that's right",
        "that's correct",
        "that's it",
        "that's all",
        "bye",
        "goodbye",
        "thanks bye",
        "bye bye",
        "hi",
        "hello",
        "sorry",
        "pardon",
        "sorry what",
        "what",
        "i'm not sure",
        "i don't know",
        "not really",
        "of course",
    }
)
_QUESTION_OPENERS = _words(
    "what what's when where where's who who's why how how's which whose do does did is are was were can could "
    "would will should shall may might have has am isn't aren't don't doesn't can't won't"
)
MIN_QUESTION_WORDS = 3


def judge(words: str) -> Verdict:
    """The verdict on a (partial) transcript; case, punctuation and spacing as any speech-to-text gives them."""
    text = words.strip()
    if not text:
        return Verdict.UNSURE
    if text.endswith(("...", "…", ",", "-", "—", ":", ";")):
        return Verdict.INCOMPLETE  # the speech-to-text model heard the voice trail off
    lowered = text.lower()
    tokens = _WORD.findall(lowered)
    if not tokens:
        return Verdict.UNSURE
    if " ".join(tokens) in _SHORT_ANSWERS:
        return Verdict.COMPLETE
    last = tokens[-1]
    if text.endswith(("?", ".", "!")):
        return _judge_punctuated(text, lowered, tokens)
    if last in _TRAILING or lowered.endswith(_THINKING):
        return Verdict.INCOMPLETE
    if _reading_out(tokens, lowered):
        return Verdict.INCOMPLETE
    # The last sentence: after the last terminal mark inside the text, if any.
    sentence = _WORD.findall(re.split(r"[.!?]\s+", lowered)[-1])
    if sentence and sentence[0] in _QUESTION_OPENERS and len(sentence) >= MIN_QUESTION_WORDS:
        return Verdict.COMPLETE
    return Verdict.UNSURE


def _judge_punctuated(text: str, lowered: str, tokens: list[str]) -> Verdict:
    """Words the speech-to-text model closed with "?", "." or "!" (OpenAI's transcribers punctuate).

    Only a last word that cannot close a sentence makes them unfinished. A question is complete. A
    statement whose last word is a pronoun, an auxiliary or a preposition ("Yes, I can.", "I'll take it.",
    but also a transcriber's full stop at a pause: "My name is.") is left to the usual silence.
    """
    last = tokens[-1]
    if last in _CANNOT_END:
        return Verdict.INCOMPLETE
    if text.endswith("?"):
        return Verdict.COMPLETE
    if lowered.rstrip(" .!").endswith(_THINKING) or _reading_out(tokens, lowered):
        return Verdict.INCOMPLETE
    if last in _TRAILING:
        return Verdict.UNSURE
    return Verdict.COMPLETE


def _reading_out(tokens: list[str], lowered: str) -> bool:
    """A number, code or name being read out digit by digit or letter by letter."""
    last = tokens[-1]
    spelled = len(last) == 1 and last.isalpha() and len(tokens) >= 2 and len(tokens[-2]) == 1
    if spelled:
        return True
    numeric = last.isdigit() or last in _NUMBER_WORDS
    if not numeric:
        return False
    run = 0
    for token in reversed(tokens):
        if token.isdigit() or token in _NUMBER_WORDS or len(token) == 1:
            run += 1
        else:
            break
    return run >= 2 or (_READING_OUT.search(lowered) is not None and len(tokens) > 1)


def silence_for(verdict: Verdict, *, min_silence_ms: int, end_silence_ms: int, max_silence_ms: int) -> int:
    """The silence (ms) that ends the turn once the verdict is known."""
    if verdict == Verdict.COMPLETE:
        return min_silence_ms
    if verdict == Verdict.INCOMPLETE:
        return max_silence_ms
    return end_silence_ms
