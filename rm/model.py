"""Full definition of the reward model: a transformers backbone plus a scalar head, in this file.

Two layouts, one interface (`forward(input_ids, attention_mask, ...) -> (B,) rewards`):
- native: the pooling is the one the architecture's own `*ForSequenceClassification` uses
  (`last` for decoders, `cls` through the pooler/classifier for encoders), so the model IS an
  `AutoModelForSequenceClassification` with `num_labels=1` and its checkpoint loads there
  with identical scores.
- backbone + head: any other pooling from `POOLING` over the base model's hidden states,
  followed by a `Linear(hidden, 1)` head. The pooling functions live in rm/pooling.py, which such
  checkpoints carry with rm/modeling_rmlab.py so that transformers loads them too (rm.checkpoint).
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from rm.gguf import as_plain, hf_source, plain_source  # noqa: F401 (hf_source is part of this module's API)
from rm.pooling import (PACKED_POOLING, POOLING, Pool, pool_first, pool_last, pool_mean,  # noqa: F401
                        pooled_reward)

# Config attributes that hold dropout probabilities, across architectures (BERT, Llama, GPT-2, ...).
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout",
                "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop", "classifier_dropout", "dropout")


def is_decoder_config(config) -> bool:
    """Read the config, not the name: a causal-LM-only architecture is a decoder."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    kind = config.model_type
    return bool(getattr(config, "is_decoder", False)) or (
        kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def native_pooling(config) -> str:
    """The pooling that the architecture's own sequence-classification head performs."""
    return "last" if is_decoder_config(config) else "cls"


def auto_pooling(config) -> str:
    """Our default: the last token for decoders (it has seen everything), the mean for encoders."""
    return "last" if is_decoder_config(config) else "mean"


def _fp32_linear_hook(module: nn.Linear, inputs, output):
    """Recompute a reward head in fp32 outside autocast: bf16 rewards would collide into ties."""
    with torch.autocast(output.device.type, enabled=False):
        bias = None if module.bias is None else module.bias.float()
        return F.linear(inputs[0].float(), module.weight.float(), bias)


def reward_head(body: nn.Module) -> nn.Linear:
    """The native head's output layer: the last Linear with one output (classifier / score)."""
    heads = [m for m in body.modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    if not heads:
        raise ValueError(f"{type(body).__name__} has no Linear layer with one output; load it with num_labels=1")
    return heads[-1]


class RewardModel(nn.Module):
    """Scalar reward per sequence. `body` is a seq-cls model (native) or a base model + `head`.

    Plain attributes carried along for scoring and saving (not parameters): `tokenizer`,
    `max_length`, `temperature`, `meta` (the rest of rmlab_config.json).
    """

    def __init__(self, body: nn.Module, pooling: str, head: nn.Module | None = None,
                 tokenizer=None, max_length: int = 512, temperature: float = 1.0, meta: dict | None = None):
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {sorted(POOLING)}, got {pooling!r}")
        self.body, self.head, self.pooling = body, head, pooling
        if head is None:
            reward_head(body).register_forward_hook(_fp32_linear_hook)
        self.tokenizer, self.max_length, self.temperature = tokenizer, max_length, temperature
        self.meta = dict(meta or {})

    @property
    def native(self) -> bool:
        """True when `body` is an AutoModelForSequenceClassification doing the pooling itself."""
        return self.head is None

    @property
    def config(self):
        return self.body.config

    @property
    def packable(self) -> bool:
        """Whether `forward` takes packed batches (`cu_seq_lens`): any pooled layout, and native
        decoders (their head reads the last token); a native encoder's pooler reads row 0 only."""
        return not self.native or is_decoder_config(self.config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                cu_seq_lens: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) rewards of a padded batch (input_ids (B,T) + attention_mask), or (N,) of a packed
        one: input_ids (1,L) holding N sequences end to end at offsets `cu_seq_lens` (N+1,), with
        `position_ids` restarting in each (rm.collate.PackedPairCollator; needs `use_packing`)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if cu_seq_lens is not None:
            return self._packed_forward(input_ids, position_ids, cu_seq_lens, extra)
        if self.native:
            logits = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
            return logits[:, 0].float()  # (B,) one reward per sequence
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return pooled_reward(hidden, attention_mask, self.pooling, self.head)  # (B,) head in fp32

    def _packed_forward(self, input_ids, position_ids, cu_seq_lens, extra: dict) -> torch.Tensor:
        if not self.packable:
            raise ValueError(f"packed batches need a pooled layout or a decoder; this {self.config.model_type} "
                             f"uses its own {self.pooling} pooler: train with packing off")
        longest = int((cu_seq_lens[1:] - cu_seq_lens[:-1]).max())
        varlen = {"cu_seq_lens_q": cu_seq_lens, "cu_seq_lens_k": cu_seq_lens,
                  "max_length_q": longest, "max_length_k": longest}
        body = self.body.base_model if self.native else self.body
        hidden = body(input_ids=input_ids, position_ids=position_ids, **extra, **varlen).last_hidden_state[0]  # (L,H)
        pooled = PACKED_POOLING[self.pooling](hidden, cu_seq_lens)  # (N,H)
        head = reward_head(self.body) if self.native else self.head
        with torch.autocast(pooled.device.type, enabled=False):
            bias = None if head.bias is None else head.bias.float()
            return F.linear(pooled.float(), head.weight.float(), bias).squeeze(-1)  # (N,) in fp32


VARLEN_ATTENTION = "rmlab_varlen"


def varlen_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     is_causal=None, cu_seq_lens_q=None, **kwargs):
    """transformers attention function for packed batches: q/k/v (1, heads, L, d) hold sequences
    end to end at offsets `cu_seq_lens_q`; each attends only to itself (sdpa per sequence, causal
    for decoders). Padded batches (no offsets) go to transformers' sdpa with their mask.
    Returns (1, L, heads, d) as every transformers attention function does."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", False)
    gqa = key.shape[1] != query.shape[1]
    bounds = cu_seq_lens_q.tolist()
    out = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], scale=scaling,
                                          dropout_p=dropout if module.training else 0.0, is_causal=causal,
                                          enable_gqa=gqa)
           for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None


def use_packing(model: RewardModel) -> None:
    """Let `model` take packed batches: register `varlen_attention` with transformers (padded
    batches keep sdpa's masks) and switch the backbone to it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(VARLEN_ATTENTION, varlen_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN_ATTENTION, sdpa_mask)
    model.body.set_attn_implementation(VARLEN_ATTENTION)


def build_reward_model(backbone: str, pooling: str | None = None, from_scratch: bool = False,
                       config_overrides: dict | None = None, dtype: torch.dtype | None = None,
                       dropout: float | None = None) -> RewardModel:
    """A fresh reward model on `backbone` (path or Hub id); `from_scratch` inits from its config.

    `pooling=None` picks the native pooling, "auto" `auto_pooling`. The tokenizer comes along
    as `.tokenizer`.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    source, gguf = plain_source(backbone)  # a .gguf file: its plain copy, de-quantized once (rm.gguf)
    config = AutoConfig.from_pretrained(source, **gguf, **(config_overrides or {}))
    for key in DROPOUT_KEYS if dropout is not None else ():
        if hasattr(config, key):
            setattr(config, key, dropout)
    tokenizer = load_tokenizer(backbone)
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    pooling = auto_pooling(config) if pooling == "auto" else (pooling or native_pooling(config))
    native = pooling == native_pooling(config)
    if native:
        config.num_labels = 1
    auto = AutoModelForSequenceClassification if native else AutoModel
    kwargs = {} if dtype is None else {"dtype": dtype}
    with quiet_transformers():  # a fresh head is "missing" from the backbone's weights by design
        body = (auto.from_config(config, **kwargs) if from_scratch
                else auto.from_pretrained(source, config=config, **gguf, **kwargs))
    if gguf:
        as_plain(body)  # de-quantized on load: a plain model that saves as such
    head = None if native else nn.Linear(config.get_text_config().hidden_size, 1)
    if head is not None:
        nn.init.normal_(head.weight, std=1.0 / (head.in_features + 1) ** 0.5)
        nn.init.zeros_(head.bias)
    max_length = min(tokenizer.model_max_length, getattr(config, "max_position_embeddings", 512) or 512, 4096)
    return RewardModel(body, pooling, head, tokenizer=tokenizer, max_length=max_length)


@contextmanager
def quiet_transformers():
    """Silence transformers' warnings and progress bars inside the block, then restore them."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_tokenizer(path: str, **kwargs):
    """AutoTokenizer with a pad token (decoders often lack one: fall back to eos); `kwargs` go
    to `from_pretrained` (e.g. the model's `config`, so that it need not be read again).
    `path` may be a `.gguf` file (read from its plain copy: `rm.gguf.plain_source`)."""
    from transformers import AutoTokenizer

    source, gguf = plain_source(path)
    tokenizer = AutoTokenizer.from_pretrained(source, **gguf, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def transformer_blocks(body: nn.Module) -> nn.ModuleList:
    """The backbone's stack of transformer blocks (BERT's encoder.layer, Llama's layers, GPT-2's h):
    the ModuleList holding `num_hidden_layers` modules."""
    n = body.config.get_text_config().num_hidden_layers
    for module in body.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"{type(body).__name__} has no list of {n} transformer blocks")


def freeze_lower(model: RewardModel, n: int) -> None:
    """Keep the lowest `n` transformer blocks and everything below them (embeddings) fixed.

    Nothing below block `n` then needs a gradient, so autograd stops there: the backward pass,
    two thirds of a block's training cost, runs through the upper blocks only. The blocks above,
    the final norm and the head train as before.
    """
    blocks = transformer_blocks(model.body)
    if not 0 <= n <= len(blocks):
        raise ValueError(f"freeze_layers must be between 0 and {len(blocks)} (the backbone's blocks), got {n}")
    if n == 0:
        return
    first_block = {id(p) for p in blocks[0].parameters()}
    for p in model.body.parameters():  # registration order: what runs before the blocks comes first
        if id(p) in first_block:
            break
        p.requires_grad_(False)
    for block in blocks[:n]:
        block.requires_grad_(False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
