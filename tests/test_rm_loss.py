import pytest
import torch
import torch.nn.functional as F

from rm.loss import bt_loss, center_loss, decorrelation_loss


def test_bt_loss_matches_closed_form():
    r_c, r_r = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 0.5, 2.5])
    torch.testing.assert_close(bt_loss(r_c, r_r), -F.logsigmoid(r_c - r_r).mean())


def test_bt_loss_margin_shifts_the_difference():
    r_c, r_r, m = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    torch.testing.assert_close(bt_loss(r_c, r_r, margin=m), -F.logsigmoid(r_c - r_r - m).mean())
    assert bt_loss(r_c, r_r, margin=m) > bt_loss(r_c, r_r)


def test_tie_is_a_half_label_minimised_at_equal_rewards():
    tie = torch.tensor([True])
    # -(0.5 log σ(d) + 0.5 log σ(-d)) at d = 0 is log 2; any gap costs more
    torch.testing.assert_close(bt_loss(torch.tensor([0.0]), torch.tensor([0.0]), tie=tie), torch.tensor(2.0).log())
    assert bt_loss(torch.tensor([1.0]), torch.tensor([0.0]), tie=tie) > torch.tensor(2.0).log()
    mixed = bt_loss(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]), tie=torch.tensor([False, True]))
    expected = (-F.logsigmoid(torch.tensor(1.0)) - 0.5 * (F.logsigmoid(torch.tensor(1.0)) + F.logsigmoid(torch.tensor(-1.0)))) / 2
    torch.testing.assert_close(mixed, expected)


def test_bt_loss_gradient_pushes_chosen_up():
    r_c, r_r = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    bt_loss(r_c, r_r).backward()
    assert (r_c.grad < 0).all() and (r_r.grad > 0).all()


def test_center_loss():
    assert center_loss(torch.tensor([1.0, -3.0]), 0.1).item() == pytest.approx(0.5)


def test_decorrelation_loss_is_coef_times_squared_pearson():
    r, f = torch.tensor([0.3, -1.0, 2.0, 0.5, 0.0]), torch.tensor([10.0, 3.0, 40.0, 7.0, 12.0])
    rho = torch.corrcoef(torch.stack([r, f]))[0, 1]
    torch.testing.assert_close(decorrelation_loss(r, f, 2.0), 2.0 * rho ** 2)
    assert decorrelation_loss(r, torch.full((5,), 3.0), 1.0).item() == 0.0  # constant feature: no penalty
    assert decorrelation_loss(2 * f + 1, f, 1.0).item() == pytest.approx(1.0)  # perfectly correlated


def planted_pairs(n=400, seed=0):
    """Pairs whose label follows quality q, but the chosen response is also longer: length is a nuisance
    correlated with the label. Each response: (q, length) as features; returns chosen/rejected tensors."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 2, generator=g)  # (n, 2) quality of the two responses
    length = torch.randn(n, 2, generator=g)
    first_wins = q[:, 0] + 1.5 * length[:, 0] > q[:, 1] + 1.5 * length[:, 1]  # labels reward length too
    x = torch.stack([q, length], dim=-1)  # (n, 2, 2)
    chosen = torch.where(first_wins[:, None], x[:, 0], x[:, 1])
    rejected = torch.where(first_wins[:, None], x[:, 1], x[:, 0])
    return chosen, rejected


def train_linear(chosen, rejected, coef, steps=300):
    """A linear reward r = w·(q, length) trained with BT (+ the penalty against length); returns w."""
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(steps):
        r_c, r_r = chosen @ w, rejected @ w
        loss = bt_loss(r_c, r_r)
        if coef:
            loss = loss + decorrelation_loss(torch.cat([r_c, r_r]), torch.cat([chosen[:, 1], rejected[:, 1]]), coef)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def test_decorrelation_penalty_lowers_a_planted_correlation():
    chosen, rejected = planted_pairs()
    x = torch.cat([chosen, rejected])  # (2n, 2) every response
    corr = lambda w: torch.corrcoef(torch.stack([x @ w, x[:, 1]]))[0, 1].item()  # noqa: E731
    plain, debiased = train_linear(chosen, rejected, 0.0), train_linear(chosen, rejected, 10.0)
    assert corr(plain) > 0.6  # BT learns the labels' length preference
    assert abs(corr(debiased)) < 0.1  # the penalty removes it
    assert debiased[0] > 0.5  # and the reward still follows quality
    accuracy = lambda w: ((chosen @ w) > (rejected @ w)).float().mean().item()  # noqa: E731
    assert accuracy(plain) > accuracy(debiased)  # against length-biased labels, the debiased RM agrees less
