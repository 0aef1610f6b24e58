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


def decorrelation_loss(rewards: torch.Tensor, feature: torch.Tensor, coef: float) -> torch.Tensor:
    """Decorrelation penalty against a nuisance feature, in the spirit of ODIN (Chen et al. 2024,
    arXiv:2402.07319): coef · ρ(r, f)², ρ the Pearson correlation of the batch's rewards with the
    feature's values for the same responses. Squared, so its gradient vanishes at ρ = 0; 0 when
    either is constant over the batch.

    rewards, feature: (N,) one value per response (chosen and rejected alike).
    """
    r = rewards - rewards.mean()
    f = (feature - feature.mean()).to(r.dtype)
    denom = torch.sqrt((r * r).sum() * (f * f).sum())
    if denom.item() < 1e-12:
        return rewards.sum() * 0.0  # keeps the graph: no penalty, no gradient
    return coef * ((r * f).sum() / denom) ** 2
