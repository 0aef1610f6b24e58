"""Pure loss functions for pairwise reward modelling. Each returns a scalar tensor, nothing else."""
import torch
import torch.nn.functional as F


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None,
            tie: torch.Tensor | None = None) -> torch.Tensor:
    """Bradley-Terry loss: mean of -log σ(r_c - r_r - margin); a tie is a 0.5 soft label.

    r_chosen, r_rejected: (B,) rewards; margin: (B,) required gap (None = 0); tie: (B,) bool.
    With label y (1, or 0.5 for a tie): -[y·log σ(Δ) + (1-y)·log σ(-Δ)], Δ = r_c - r_r - margin.
    """
    delta = r_chosen - r_rejected  # (B,)
    if margin is not None:
        delta = delta - margin.to(delta.dtype)
    if tie is None:
        return -F.logsigmoid(delta).mean()
    y = torch.where(tie.bool(), 0.5, 1.0).to(delta.dtype)  # (B,) soft label
    return -(y * F.logsigmoid(delta) + (1 - y) * F.logsigmoid(-delta)).mean()


def center_loss(rewards: torch.Tensor, coef: float) -> torch.Tensor:
    """Reward centering (Eisenstein et al. 2023): coef · mean(r²) keeps rewards near zero."""
    return coef * rewards.pow(2).mean()
