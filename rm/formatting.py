"""Prompt + response -> token ids, with truncation that never cuts the end of the response.

Every input is laid out as `prefix + prompt + mid + response + suffix`, where the fixed pieces
come from the tokenizer once: the special tokens of a text pair for encoders ([CLS] p [SEP] r
[SEP]), or the chat template rendered around two sentinels for decoders that have one.
Prompt and response texts are tokenized once each (cached), and over-long inputs lose
prompt tokens from the left first, then response tokens from the left, so the response's
end, which is what a reward model judges, is always kept. (TRL drops such pairs instead.)
"""
from collections import OrderedDict
from dataclasses import dataclass

SENTINEL_P, SENTINEL_R = "\ue000PROMPT\ue000", "\ue001RESPONSE\ue001"
PLAIN_SEPARATOR = "\n\n"  # between prompt and response when the tokenizer has no pair separator


@dataclass(frozen=True)
class Template:
    """Fixed token pieces around prompt and response.

    `types` holds the token types of prefix, mid and suffix and the type of prompt and of
    response tokens; None for models without token types.
    """

    prefix: tuple[int, ...]
    mid: tuple[int, ...]
    suffix: tuple[int, ...]
    types: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int] | None
    lead_p: str = ""  # whitespace moved from the piece before the prompt into the prompt text (BPE)
    lead_r: str = ""

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.mid) + len(self.suffix)


def _split_trailing_space(text: str) -> tuple[str, str]:
    stripped = text.rstrip(" ")
    return stripped, text[len(stripped):]


def chat_template(tokenizer) -> Template:
    """Pieces of the chat template around one user turn (prompt) and one assistant turn."""
    messages = [{"role": "user", "content": SENTINEL_P}, {"role": "assistant", "content": SENTINEL_R}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    prefix, rest = text.split(SENTINEL_P)
    mid, suffix = rest.split(SENTINEL_R)
    prefix, lead_p = _split_trailing_space(prefix)
    mid, lead_r = _split_trailing_space(mid)
    ids = tokenizer([prefix, mid, suffix], add_special_tokens=False)["input_ids"]
    return Template(tuple(ids[0]), tuple(ids[1]), tuple(ids[2]), None, lead_p, lead_r)


def pair_template(tokenizer) -> Template:
    """Special tokens of a text pair, found from the tokenizer's own `sequence_ids`."""
    enc = tokenizer("a", "b")
    seq = enc.sequence_ids()  # None for special tokens, 0 / 1 for the first / second text
    ids, types = enc["input_ids"], enc.get("token_type_ids")
    first, second = seq.index(0), seq.index(1)
    pieces = [(0, first), (first + seq.count(0), second), (second + seq.count(1), len(seq))]
    prefix, mid, suffix = (tuple(ids[a:b]) for a, b in pieces)
    type_pieces = [tuple(types[a:b]) for a, b in pieces] if types is not None else None
    if not mid:  # decoders without a chat template glue a pair together: keep a visible break
        mid = tuple(tokenizer(PLAIN_SEPARATOR, add_special_tokens=False)["input_ids"])
        if type_pieces is not None:
            type_pieces[1] = (types[first],) * len(mid)
    type_info = None if types is None else (*type_pieces, types[first], types[second])
    return Template(prefix, mid, suffix, type_info)


def make_template(tokenizer) -> Template:
    """Chat template for tokenizers that have one, else the text-pair layout."""
    return chat_template(tokenizer) if getattr(tokenizer, "chat_template", None) else pair_template(tokenizer)


def fit(prompt: list[int], response: list[int], budget: int) -> tuple[list[int], list[int], bool]:
    """Cut `prompt` from the left, then `response` from the left, to fit `budget` tokens."""
    if len(prompt) + len(response) <= budget:
        return prompt, response, False
    keep_r = min(len(response), budget)
    keep_p = budget - keep_r
    return prompt[len(prompt) - keep_p:] if keep_p else [], response[len(response) - keep_r:], True


@dataclass
class Encoded:
    """Token ids per (prompt, response) pair; `types` is None for models without token types."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: list[bool]

    @property
    def n_truncated(self) -> int:
        return sum(self.truncated)


class Formatter:
    """Tokenizes (prompt, response) pairs for one tokenizer and max length; caches texts' ids."""

    def __init__(self, tokenizer, max_length: int, cache_size: int = 4096):
        self.tokenizer, self.max_length = tokenizer, max_length
        self.template = make_template(tokenizer)
        self.budget = max_length - self.template.n_special
        if self.budget < 2:
            raise ValueError(f"max_length={max_length} leaves no room beside {self.template.n_special} special tokens")
        self._cache: OrderedDict[str, list[int]] = OrderedDict()
        self.cache_size = cache_size

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens), tokenizing each new text once."""
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if new:
            ids = self.tokenizer(new, add_special_tokens=False, verbose=False)["input_ids"]  # we truncate
            self._cache.update(zip(new, ids))
        out = [self._cache[t] for t in texts]
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def encode(self, prompts: list[str], responses: list[str]) -> Encoded:
        t = self.template
        p_ids = self._ids([t.lead_p + p for p in prompts])
        r_ids = self._ids([t.lead_r + r for r in responses])
        ids, types, cut = [], [] if t.types else None, []
        for p, r in zip(p_ids, r_ids, strict=True):
            p, r, was_cut = fit(p, r, self.budget)
            ids.append([*t.prefix, *p, *t.mid, *r, *t.suffix])
            cut.append(was_cut)
            if types is not None:
                (tp, tm, ts, type_p, type_r) = t.types
                types.append([*tp, *[type_p] * len(p), *tm, *[type_r] * len(r), *ts])
        return Encoded(ids, types, cut)
