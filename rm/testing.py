"""Tiny random models with real tokenizers, built from a config (no download), for tests and demos.

`tiny_backbone(dir)` writes a 2-layer BERT with a small WordPiece vocabulary;
`tiny_decoder(dir)` writes a 2-layer Llama-like decoder with a chat template. Both save a
folder that `AutoModel`/`AutoTokenizer.from_pretrained` and `rm.train` accept as a backbone.
`tiny_qwen3_rm(dir)` writes a Hub-style decoder reward model (Qwen3ForSequenceClassification,
num_labels=1) with a chat template, like Skywork-Reward-V2 at toy size.
"""
import string
from pathlib import Path

import torch

WORDS = (
    "the a an is are was be to of and or in on at for with not no yes it this that you i we "
    "they he she what how why when where who good bad better worse best worst help please "
    "thanks sorry sure can cannot will would should do does did make made answer question "
    "human assistant user system say said think know like want need use here there very "
    "more less one two three four five six seven eight nine ten zero plus minus equals "
    "true false right wrong correct safe unsafe kind rude polite harm harmful legal illegal"
).split()


def _wordpiece_vocab() -> list[str]:
    """Specials, characters, continuation pieces and a few whole words: ~200 entries."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *pieces, *WORDS]


def tiny_backbone(folder: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> str:
    """Write a tiny random BERT (+ WordPiece tokenizer) to `folder`; return the folder as str."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(_wordpiece_vocab()))}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def tiny_decoder(folder: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> str:
    """Write a tiny random Llama-like decoder with a chat template to `folder`; return it as str."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(specials + _wordpiece_vocab()[5:]))}
    core = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", additional_special_tokens=specials[4:], padding_side="left",
        model_max_length=512,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, intermediate_size=2 * hidden,
        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    LlamaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def tiny_qwen3_rm(folder: str | Path, seed: int = 0):
    """Write a tiny random Qwen3 sequence-classification RM (num_labels=1) with tiny_decoder's
    tokenizer and chat template to `folder`, as it would sit in the Hub cache; returns the tokenizer."""
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForSequenceClassification

    tiny_decoder(folder)  # its tokenizer (chat template included); the model is replaced below
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                         num_labels=1, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    Qwen3ForSequenceClassification(config).save_pretrained(folder)
    return tokenizer
