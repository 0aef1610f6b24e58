"""A reward model whose pooling is not the backbone's own, as a transformers model class.

This file travels inside every checkpoint whose pooling has no `*ForSequenceClassification`
in transformers (mean pooling on an encoder, for example), so that anyone can load it with

    AutoModelForSequenceClassification.from_pretrained(ckpt, trust_remote_code=True)

and get `logits` of shape (B, 1): one reward per sequence, the same as `rm.score`. It imports
only torch, transformers and its sibling pooling.py, which travels with it (a checkpoint's code
cannot import this project); rm.model uses the same pooling functions, so the two never disagree.
"""
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .pooling import POOLING, pooled_reward


class RmlabRewardConfig(PretrainedConfig):
    """The backbone's own config (`backbone`, a dict with its `model_type`) plus the pooling."""

    model_type = "rmlab_reward"

    def __init__(self, backbone: dict | None = None, pooling: str = "mean", **kwargs):
        self.backbone = dict(backbone or {})
        self.pooling = pooling
        kwargs.setdefault("num_labels", 1)
        super().__init__(**kwargs)

    def backbone_config(self) -> PretrainedConfig:
        values = dict(self.backbone)
        return AutoConfig.for_model(values.pop("model_type"), **values)


class RmlabRewardModel(PreTrainedModel):
    """Backbone + pooling + Linear(hidden, 1): `logits` (B, 1) hold one reward per sequence."""

    config_class = RmlabRewardConfig
    base_model_prefix = "backbone"

    def __init__(self, config: RmlabRewardConfig):
        super().__init__(config)
        if config.pooling not in POOLING:
            raise ValueError(f"pooling must be one of {sorted(POOLING)}, got {config.pooling!r}")
        backbone = config.backbone_config()
        self.backbone = AutoModel.from_config(backbone)
        self.score = nn.Linear(backbone.get_text_config().hidden_size, 1)
        self.post_init()

    def _init_weights(self, module):
        if module is getattr(self, "score", None):  # the backbone's weights come from its checkpoint
            nn.init.normal_(module.weight, std=1.0 / (module.in_features + 1) ** 0.5)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                return_dict=None, **kwargs) -> SequenceClassifierOutput:
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
            attention_mask = torch.ones(shape, dtype=torch.long, device=self.score.weight.device)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **extra)
        rewards = pooled_reward(out.last_hidden_state, attention_mask, self.config.pooling, self.score)
        return SequenceClassifierOutput(logits=rewards[:, None])  # (B, 1)
