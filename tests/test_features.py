"""analysis.features: every registered feature on hand-written text, with exact values."""
import math

import pandas as pd
import pytest

from analysis.features import (
    FEATURES,
    agreement_score,
    count_tokens,
    feature_table,
    formatting_counts,
    ngram_repetition,
    sentences,
    sentiment,
    words,
)


def value(name: str, response: str, prompt: str = "") -> float:
    return FEATURES[name].fn(prompt, response)


def test_length_features_count_chars_words_and_regex_tokens():
    text = "Don't panic, it's fine."
    assert value("length_chars", text) == 23.0
    assert words(text) == ["don't", "panic", "it's", "fine"]
    assert value("length_words", text) == 4.0
    # regex tokens: don ' t panic , it ' s fine .
    assert value("length_tokens", text) == 10.0


def test_length_tokens_uses_a_given_tokenizer():
    class Tok:  # HF-style: .tokenize
        def tokenize(self, text):
            return list(text.replace(" ", ""))

    assert count_tokens("ab c", Tok()) == 3
    assert count_tokens("ab c", str.split) == 2  # a plain callable
    table = feature_table(["p"], ["ab c"], features=["length_tokens"], tokenizer=Tok())
    assert table.loc[0, "length_tokens"] == 3.0


def test_sentences_split_on_terminal_punctuation_and_blank_lines():
    text = "First one. Second one! Is this third?\n\nFourth without a stop"
    assert sentences(text) == ["First one", "Second one", "Is this third", "Fourth without a stop"]
    assert value("sentences", text) == 4.0
    assert value("sentences", "3.14 is pi. Yes.") == 2.0  # a decimal point is not a sentence end
    assert value("sentences", "...") == 0.0


def test_hedging_counts_each_hedge_phrase():
    text = "It depends. I'm not sure, but it might work; maybe not."
    assert value("hedging", text) == 4.0
    assert value("hedging", "The answer is 4.") == 0.0
    assert value("hedging", "Mighty oaks.") == 0.0  # whole words only


def test_agreement_is_signed_by_affirmation_and_contradiction_cues():
    claim = "I'm sure 17 + 5 = 23, right?"
    assert agreement_score(claim, "Yes, that's right: 17 + 5 = 23.") == 1.0
    assert agreement_score(claim, "No, that's not right: it's 22.") == -1.0
    assert agreement_score(claim, "It's 22, not 23.") == -1.0  # denies a word of the claim
    assert agreement_score("Paris is big.", "It's 22, not 23.") == 0.0  # 23 is not in this prompt
    assert agreement_score(claim, "Yes. Actually, no need to check again.") == 0.0  # 1 affirm, 1 contradict
    assert agreement_score(claim, "Correct, exactly right. Almost everyone gets it.") == pytest.approx(1 / 2)
    assert agreement_score(claim, "Here is the sum.") == 0.0
    assert value("agreement", "You're right.", claim) == 1.0


def test_sentiment_is_vader_compound():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    text = "This is a wonderful, happy answer!"
    expected = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    assert sentiment(text) == expected
    assert value("sentiment", text) > 0.5
    assert value("sentiment", "This is terrible and awful.") < -0.5
    assert value("sentiment", "The box is red.") == 0.0


def test_formatting_counts_lists_bold_headers_and_code():
    text = (
        "# Title\n"
        "Some **bold** and __also bold__ text with `inline` code.\n"
        "- one\n"
        "* two\n"
        "1. three\n"
        "```python\n# not a header\n- not a list\n```\n"
    )
    assert formatting_counts(text) == {"lists": 3, "bold": 2, "headers": 1, "code": 2}
    assert value("formatting", text) == 8.0
    assert value("format_lists", text) == 3.0
    assert value("format_bold", text) == 2.0
    assert value("format_headers", text) == 1.0
    assert value("format_code", text) == 2.0
    assert value("formatting", "Plain text - with a dash and 2*3*4.") == 0.0


def test_repetition_is_share_of_repeated_ngrams():
    assert ngram_repetition("a b a b", n=2) == pytest.approx(1 / 3)  # ab ba ab
    # 9 words -> 7 trigrams (tcs cst stc tcs cst stc tcs), 3 distinct -> 4 repeats
    assert value("repetition", "the cat sat. the cat sat. the cat sat.") == pytest.approx(4 / 7)
    assert value("repetition", "one two three four") == 0.0
    assert value("repetition", "too short") == 0.0


def test_flattery_counts_flattering_phrases():
    assert value("flattery", "Great question! What a great idea, brilliant.") == 3.0
    assert value("flattery", "The question is great.") == 0.0


def test_every_feature_has_documentation_and_returns_a_float():
    for name, feat in FEATURES.items():
        assert feat.doc.strip(), name
        out = feat.fn("Is it 5?", "Yes, **it** is 5.\n- sure")
        assert isinstance(out, float) and math.isfinite(out), name


def test_feature_table_has_one_row_per_response_and_registry_columns():
    table = feature_table(["p1", "p2"], ["Hello there.", "Great question! Maybe."])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == list(FEATURES)
    assert table.shape == (2, len(FEATURES))
    assert table["flattery"].tolist() == [0.0, 1.0]
    assert table["hedging"].tolist() == [0.0, 1.0]
    sub = feature_table(["p"], ["x y"], features=["length_words", "length_chars"])
    assert list(sub.columns) == ["length_words", "length_chars"]
    assert sub.iloc[0].tolist() == [2.0, 3.0]


def test_feature_table_rejects_unknown_features_and_mismatched_lengths():
    with pytest.raises(ValueError, match="unknown features \\['lenght'\\]"):
        feature_table(["p"], ["r"], features=["lenght"])
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        feature_table(["p", "q"], ["r"])
