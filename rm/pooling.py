"""How a sequence of hidden states becomes one reward: the pooling functions, in torch only.

rm.model uses them for training and scoring; rm/modeling_rmlab.py (the file that checkpoints
carry for transformers) imports them relatively, so this file travels with it.
"""
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Pool = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B,T,H), (B,T) -> (B,H)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return torch.arange(mask.shape[1], device=mask.device).expand_as(mask)


def pool_last(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the rightmost non-pad token; correct for left and right padding."""
    last = (_positions(mask) * mask).argmax(-1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool_first(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the leftmost non-pad token ([CLS] for encoders); left or right padding."""
    first = mask.to(torch.int32).argmax(-1)  # (B,) first 1 in the mask
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]


def pool_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over non-pad tokens."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B,T,1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


POOLING: dict[str, Pool] = {"last": pool_last, "mean": pool_mean, "cls": pool_first}


# Packed (padding-free) layout: hidden (L, H) holds N sequences end to end, sequence i at
# rows cu[i]:cu[i+1] of the offsets cu (N+1,) (rm.collate.PackedPairCollator).
PackedPool = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (L,H), (N+1,) -> (N,H)


def packed_mean(hidden: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    """Mean of each sequence's hidden states, summed in fp32."""
    lengths = (cu[1:] - cu[:-1]).long()  # (N,)
    segment = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)  # (L,)
    sums = hidden.new_zeros(len(lengths), hidden.shape[-1], dtype=torch.float32).index_add_(0, segment, hidden.float())
    return sums / lengths.clamp(min=1).unsqueeze(-1)


PACKED_POOLING: dict[str, PackedPool] = {
    "last": lambda hidden, cu: hidden[cu[1:].long() - 1],
    "mean": packed_mean,
    "cls": lambda hidden, cu: hidden[cu[:-1].long()],
}


def pooled_reward(hidden: torch.Tensor, mask: torch.Tensor, pooling: str, head: nn.Linear) -> torch.Tensor:
    """(B,) rewards: pool the hidden states (B,T,H), then the head in fp32 even under autocast."""
    pooled = POOLING[pooling](hidden, mask)  # (B,H)
    with torch.autocast(pooled.device.type, enabled=False):
        bias = None if head.bias is None else head.bias.float()
        return F.linear(pooled.float(), head.weight.float(), bias).squeeze(-1)
