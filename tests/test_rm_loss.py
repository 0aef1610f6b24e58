import pytest
import torch
import torch.nn.functional as F

from rm.loss import bt_loss, center_loss


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
