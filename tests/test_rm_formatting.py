import pytest

from rm.formatting import Formatter, fit, make_template
from rm.testing import tiny_backbone, tiny_decoder


def test_fit_cuts_prompt_from_the_left_first():
    prompt, response = list(range(10)), [100, 101, 102]
    assert fit(prompt, response, 20) == (prompt, response, False)
    assert fit(prompt, response, 8) == ([5, 6, 7, 8, 9], response, True)
    assert fit(prompt, response, 2) == ([], [101, 102], True)  # the response's end survives


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tok")
    return {"encoder": AutoTokenizer.from_pretrained(tiny_backbone(root / "enc")),
            "decoder": AutoTokenizer.from_pretrained(tiny_decoder(root / "dec"))}


def test_encoder_text_pair_matches_the_tokenizer(tokenizers):
    tok = tokenizers["encoder"]
    enc = Formatter(tok, 64).encode(["what is two plus two?"], ["four, sure"])
    ref = tok("what is two plus two?", "four, sure")
    assert enc.input_ids[0] == ref["input_ids"] and enc.token_type_ids[0] == ref["token_type_ids"]
    assert enc.truncated == [False]


def test_decoder_uses_the_chat_template(tokenizers):
    tok = tokenizers["decoder"]
    assert make_template(tok).types is None
    enc = Formatter(tok, 64).encode(["what is two plus two?"], ["four"])
    messages = [{"role": "user", "content": "what is two plus two?"}, {"role": "assistant", "content": "four"}]
    assert enc.input_ids[0] == tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_truncation_keeps_the_response_end_and_counts(tokenizers, kind):
    tok = tokenizers[kind]
    prompt = " ".join(["one two three"] * 20) + " help"
    response = "sure here is the answer five"
    formatter = Formatter(tok, 24)
    enc = formatter.encode([prompt, "hi"], [response, response])
    ids = enc.input_ids[0]
    assert len(ids) == 24 and enc.truncated == [True, False] and enc.n_truncated == 1
    text = tok.decode(ids, skip_special_tokens=True)
    assert text.endswith("sure here is the answer five") and "help" in text
    assert not text.startswith("one two three one two three one two three one two three one")
    assert ids[-len(formatter.template.suffix):] == list(formatter.template.suffix)


def test_too_small_max_length_is_rejected(tokenizers):
    with pytest.raises(ValueError, match="max_length=3 leaves no room"):
        Formatter(tokenizers["decoder"], 3)


def test_decoder_without_chat_template_gets_a_separator(tokenizers):
    import copy

    tok = copy.deepcopy(tokenizers["decoder"])
    tok.chat_template = None
    template = make_template(tok)
    assert template.mid == tuple(tok("\n\n", add_special_tokens=False)["input_ids"])
    enc = Formatter(tok, 64).encode(["what is two plus two?"], ["four"])
    assert enc.input_ids[0] == [*template.prefix, *tok("what is two plus two?", add_special_tokens=False)["input_ids"],
                                *template.mid, *tok("four", add_special_tokens=False)["input_ids"], *template.suffix]
