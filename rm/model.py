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

from rm.pooling import POOLING, Pool, pool_first, pool_last, pool_mean, pooled_reward  # noqa: F401

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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if self.native:
            logits = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
            return logits[:, 0].float()  # (B,) one reward per sequence
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return pooled_reward(hidden, attention_mask, self.pooling, self.head)  # (B,) head in fp32


def build_reward_model(backbone: str, pooling: str | None = None, from_scratch: bool = False,
                       config_overrides: dict | None = None, dtype: torch.dtype | None = None,
                       dropout: float | None = None) -> RewardModel:
    """A fresh reward model on `backbone` (path or Hub id); `from_scratch` inits from its config.

    `pooling=None` picks the native pooling, "auto" `auto_pooling`. The tokenizer comes along
    as `.tokenizer`.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(backbone, **(config_overrides or {}))
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
        body = auto.from_config(config, **kwargs) if from_scratch else auto.from_pretrained(backbone, config=config, **kwargs)
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
    to `from_pretrained` (e.g. the model's `config`, so that it need not be read again)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
