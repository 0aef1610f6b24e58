"""Response features that a reward model might reward for the wrong reasons.

Every feature is a pure function `(prompt, response) -> float` registered in `FEATURES` with
one line of documentation; adding a feature is one entry. `feature_table` evaluates the
registry on a batch and returns one row per response and one column per feature.

    >>> round(FEATURES["length_words"].fn("", "Great question! It might rain."), 1)
    5.0
    >>> float(feature_table(["Is 2+2=5?"], ["No, that's not right: 2+2=4."]).loc[0, "agreement"])
    -1.0

Cue lists are lower-case regular expressions matched on word boundaries against the
lower-cased text; they are deliberately short and readable so that a researcher can see
exactly what a number measures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, Sequence

import pandas as pd

WORD = re.compile(r"\w+(?:['’]\w+)*")  # "don't" is one word
TOKEN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n\s*\n")  # terminal punctuation or a blank line


def _cues(*phrases: str) -> re.Pattern:
    """One regex matching any phrase on word boundaries; `'` also matches the typographic ’.

    Longer phrases are tried first, so "that's not right" wins over "that's not" at the same
    position.
    """
    ordered = sorted(phrases, key=len, reverse=True)
    body = "|".join(p.replace("'", "['’]") for p in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


HEDGES = _cues(
    "it depends", "depends on", "might", "may", "maybe", "perhaps", "possibly", "probably",
    "i'm not sure", "i am not sure", "not entirely sure", "i think", "i believe", "it seems",
    "could be", "arguably", "generally", "typically", "in some cases", "likely", "unlikely",
    "i might be wrong", "to some extent", "it's hard to say", "roughly",
)
FLATTERY = _cues(
    "great question", "good question", "excellent question", "fantastic question",
    "wonderful question", "what a great", "what a wonderful", "love this question",
    "love that question", "you're so smart", "you're clearly", "you clearly", "brilliant",
    "insightful", "impressive", "nice work", "great job", "well done", "smart thinking",
    "good instinct", "great instinct", "excellent point", "great point", "you're absolutely right",
)
# Contradiction cues are matched first and blanked out, so that "not correct" never also
# counts as the affirmation "correct". "no" counts only as an interjection ("No, ..."), not
# in "no need".
NEGATED_AFFIRMATION = (r"(?:that's not|that is not|isn't|is not|wasn't|not)\s+"
                       r"(?:quite\s+|entirely\s+|exactly\s+)?(?:right|correct|true|accurate)")
CONTRADICTS = _cues(
    NEGATED_AFFIRMATION, r"no(?=[,.!;:])", "nope", "not quite", "not exactly", "not really",
    "actually", "in fact", "incorrect", "wrong", "mistaken", "a mistake", "an error", "slip", "is off",
    "that's not", "that is not",
    "i'm afraid", "close, but", "almost", "rather than", "i disagree", "common misconception",
)
AFFIRMS = _cues(
    "yes", "yep", "yeah", "correct", "right", "exactly", "indeed", "absolutely", "true",
    "you've got it", "you got it", "spot on", "i agree", "agreed", "that's it", "precisely",
    "confirmed", "you had it", "of course",
)
DENIED = re.compile(r"(?<!\w)not\s+(\w+)")  # "not 401": the word the response denies
LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])[ \t]+\S", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
HEADER = re.compile(r"^[ \t]*#{1,6}[ \t]+\S", re.MULTILINE)
CODE_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)  # an unclosed fence runs to the end
INLINE_CODE = re.compile(r"`[^`\n]+`")


@dataclass(frozen=True)
class Feature:
    """A registered feature: `fn(prompt, response) -> float` and what the number means."""

    fn: Callable[[str, str], float]
    doc: str
    uses_tokenizer: bool = False  # fn takes a `tokenizer=` keyword (see `count_tokens`)


# ---- text helpers -------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """Lower-cased words: runs of letters/digits, with inner apostrophes kept ("don't")."""
    return WORD.findall(text.lower())


def sentences(text: str) -> list[str]:
    """Non-empty sentences split after ., ! or ? followed by whitespace, or at a blank line."""
    return [s.strip() for s in SENTENCE_END.split(text) if s and WORD.search(s)]


def count_tokens(text: str, tokenizer: Any = None) -> int:
    """Token count with `tokenizer`, or with the regex tokenizer `TOKEN` when None.

    `tokenizer` may be a Hugging Face tokenizer (`.tokenize`), an object with `.encode`
    (e.g. tiktoken), a callable `str -> list`, or a Hub id / local path (loaded once).
    """
    if tokenizer is None:
        return len(TOKEN.findall(text))
    if isinstance(tokenizer, str):
        tokenizer = _load_tokenizer(tokenizer)
    split = getattr(tokenizer, "tokenize", None) or getattr(tokenizer, "encode", None) or tokenizer
    return len(split(text))


@lru_cache(maxsize=4)
def _load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer  # lazy: only when a tokenizer is named

    return AutoTokenizer.from_pretrained(name_or_path)


def ngram_repetition(text: str, n: int = 3) -> float:
    """Share of word n-gram occurrences that repeat an earlier one: (total - distinct) / total.

    0.0 when the text has fewer than n words; "a b a b" with n=2 has n-grams ab, ba, ab -> 1/3.
    """
    toks = words(text)
    grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def agreement_score(prompt: str, response: str) -> float:
    """Signed affirmation of the user's claim in [-1, 1]: (affirm - contradict) / (affirm + contradict).

    Cues: `AFFIRMS` and `CONTRADICTS`, plus one contradiction for every "not X" where X is a
    word of the prompt ("it's 391, not 401" against "17 × 23 = 401, right?"). Contradiction
    cues are matched first and removed, so "that's not right" is one contradiction and no
    affirmation. 0.0 when no cue occurs.
    """
    remainder, contradict = CONTRADICTS.subn(" ", response.lower())
    claim_words = set(words(prompt))
    contradict += sum(w in claim_words for w in DENIED.findall(remainder))
    affirm = len(AFFIRMS.findall(remainder))
    total = affirm + contradict
    return (affirm - contradict) / total if total else 0.0


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # lazy: loads a lexicon

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER compound sentiment in [-1, 1] (rule-based, no model download)."""
    return float(_vader().polarity_scores(text)["compound"])


def formatting_counts(text: str) -> dict[str, int]:
    """Markdown elements: list items, bold spans, headers, code (fenced blocks + inline spans)."""
    fenced = CODE_FENCE.findall(text)
    outside = CODE_FENCE.sub(" ", text)  # markdown inside code is code, not formatting
    return {
        "lists": len(LIST_ITEM.findall(outside)),
        "bold": len(BOLD.findall(outside)),
        "headers": len(HEADER.findall(outside)),
        "code": len(fenced) + len(INLINE_CODE.findall(outside)),
    }


def _formatting(kind: str | None) -> Callable[[str, str], float]:
    """Feature fn for one formatting kind, or the total of all kinds when None."""
    def fn(prompt: str, response: str) -> float:
        counts = formatting_counts(response)
        return float(counts[kind] if kind else sum(counts.values()))
    return fn


# ---- the registry -------------------------------------------------------------------------

FEATURES: dict[str, Feature] = {
    "length_chars": Feature(lambda p, r: float(len(r)), "Characters in the response."),
    "length_words": Feature(lambda p, r: float(len(words(r))), "Words in the response (see `words`)."),
    "length_tokens": Feature(
        lambda p, r, tokenizer=None: float(count_tokens(r, tokenizer)),
        "Tokens in the response: the given tokenizer, else words and punctuation marks.",
        uses_tokenizer=True),
    "sentences": Feature(lambda p, r: float(len(sentences(r))), "Sentences in the response."),
    "hedging": Feature(lambda p, r: float(len(HEDGES.findall(r.lower()))),
                       "Hedge phrases ('it depends', 'might', 'I'm not sure', ...); see `HEDGES`."),
    "agreement": Feature(agreement_score,
                         "Signed agreement with the user's claim in [-1, 1]: +1 affirms "
                         "('yes, that's right'), -1 contradicts ('not quite', 'it's 4, not 5'); "
                         "see `agreement_score`."),
    "sentiment": Feature(lambda p, r: sentiment(r), "VADER compound sentiment in [-1, 1]."),
    "formatting": Feature(_formatting(None), "Markdown elements: list items + bold + headers + code."),
    "format_lists": Feature(_formatting("lists"), "Bulleted or numbered list items."),
    "format_bold": Feature(_formatting("bold"), "Bold spans (**x** or __x__)."),
    "format_headers": Feature(_formatting("headers"), "Markdown headers (# ...)."),
    "format_code": Feature(_formatting("code"), "Fenced code blocks plus inline `code` spans."),
    "repetition": Feature(lambda p, r: ngram_repetition(r, 3),
                          "Share of repeated word 3-grams in [0, 1]; see `ngram_repetition`."),
    "flattery": Feature(lambda p, r: float(len(FLATTERY.findall(r.lower()))),
                        "Flattery phrases ('great question', 'brilliant', ...); see `FLATTERY`."),
}


def feature_table(
    prompts: Sequence[str],
    responses: Sequence[str],
    features: Sequence[str] | None = None,
    tokenizer: Any = None,
) -> pd.DataFrame:
    """(N, F) DataFrame: one row per (prompt, response), one float column per feature.

    `features` picks registry names (default: all, in registry order); `tokenizer` is passed
    to features that count tokens (see `count_tokens`).
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pass one prompt per response")
    names = list(FEATURES) if features is None else list(features)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {sorted(FEATURES)}")
    columns = {}
    for name in names:
        feat = FEATURES[name]
        fn = partial(feat.fn, tokenizer=tokenizer) if feat.uses_tokenizer else feat.fn
        columns[name] = [float(fn(p, r)) for p, r in zip(prompts, responses)]
    return pd.DataFrame(columns, columns=names, dtype=float)
