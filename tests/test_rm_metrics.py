import numpy as np
import pytest

from rm import metrics


def test_accuracy_counts_equal_scores_and_ties_half():
    r_c, r_r = np.array([2.0, 1.0, 0.0, 5.0]), np.array([1.0, 1.0, 1.0, 0.0])
    assert metrics.accuracy(r_c, r_r) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert metrics.accuracy(r_c, r_r, tie=[False, False, False, True]) == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)


def test_log_loss_brier_and_gap_by_hand():
    r_c, r_r = np.array([np.log(3.0), 0.0]), np.array([0.0, np.log(3.0)])  # p = 0.75, 0.25
    assert metrics.reward_gap(r_c, r_r) == pytest.approx(0.0)
    assert metrics.log_loss(r_c, r_r) == pytest.approx(-(np.log(0.75) + np.log(0.25)) / 2)
    assert metrics.brier(r_c, r_r) == pytest.approx((0.25 ** 2 + 0.75 ** 2) / 2)
    assert metrics.log_loss(r_c, r_r, tie=[True, True]) == pytest.approx(-0.5 * (np.log(0.75) + np.log(0.25)))


def test_ece_and_reliability_table_by_hand():
    # p = 0.75 for 4 pairs, of which 3 are ranked right: perfectly calibrated
    d = np.log(3.0)
    r_c, r_r = np.array([d, d, d, -d]), np.zeros(4)
    assert metrics.ece(r_c, r_r) == pytest.approx(0.0, abs=1e-12)
    # p = 0.75 for 4 pairs, all right: bins at 0.75 (y=1) and 0.25 (y=0) both miss by 0.25
    r_c = np.full(4, d)
    assert metrics.ece(r_c, np.zeros(4)) == pytest.approx(0.25)
    table = metrics.reliability_table(r_c, np.zeros(4), n_bins=4)
    assert table["count"].tolist() == [4, 4]
    assert table["mean_p"].tolist() == pytest.approx([0.25, 0.75])
    assert table["frac_pos"].tolist() == pytest.approx([0.0, 1.0])


def test_fit_temperature_recovers_a_known_scale():
    # rewards scaled by 3 from a calibrated model: the fitted T undoes the scale
    rng = np.random.default_rng(0)
    d = rng.normal(0, 2, 20000)
    label = rng.random(20000) < 1 / (1 + np.exp(-d))  # y=1 with prob σ(d)
    r_c, r_r = np.where(label, 3 * d, -3 * d), np.zeros_like(d)
    t = metrics.fit_temperature(r_c, r_r)
    assert t == pytest.approx(3.0, rel=0.05)
    assert metrics.log_loss(r_c, r_r, temperature=t) < metrics.log_loss(r_c, r_r)


def test_fit_temperature_constructed_case_matches_closed_form():
    # two pairs with Δ = ±a and outcome ratio 3:1 => optimum σ(a/T) = 3/4 => T = a / log 3
    r_c, r_r = np.array([2.0, 2.0, 2.0, -2.0]), np.zeros(4)
    assert metrics.fit_temperature(r_c, r_r) == pytest.approx(2.0 / np.log(3.0), rel=1e-4)


def test_p_better_and_all_metrics():
    assert metrics.p_better(1.0, 1.0) == pytest.approx(0.5)
    assert metrics.p_better(2.0, 0.0, temperature=2.0) == pytest.approx(1 / (1 + np.exp(-1)))
    out = metrics.all_metrics(np.array([1.0, 2.0]), np.array([0.0, 3.0]), temperature=2.0)
    assert out["n"] == 2 and out["accuracy"] == 0.5 and out["temperature"] == 2.0
    assert out["log_loss_calibrated"] == pytest.approx(metrics.log_loss([1.0, 2.0], [0.0, 3.0], temperature=2.0))
