"""analysis.calibration: split, temperature scaling on synthetic over-confident rewards, plot, CLI."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis import calibration as C
from analysis_support import WordCountScorer, tiny_rm
from rm import metrics as M


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine a second thread stalls them."""
    from analysis.policy import torch_threads

    with torch_threads(1):
        yield


def overconfident(n=4000, scale=3.0, seed=0):
    """Pairs whose true log-odds z ~ N(0, 1.5²) but whose reward gap is scale·z (true T = scale)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=n)
    a_wins = rng.random(n) < 1 / (1 + np.exp(-z))
    gap = np.where(a_wins, scale * z, -scale * z)  # r_chosen - r_rejected
    return gap, np.zeros(n)


def test_split_pairs_is_a_seeded_partition():
    fit, ev = C.split_pairs(10, 0.3, seed=1)
    assert len(fit) == 3 and len(ev) == 7 and sorted([*fit, *ev]) == list(range(10))
    assert np.array_equal(fit, C.split_pairs(10, 0.3, seed=1)[0])
    with pytest.raises(ValueError, match="fit_fraction"):
        C.split_pairs(10, 1.0)
    with pytest.raises(ValueError, match="need more pairs"):
        C.split_pairs(1, 0.5)


def test_fitted_temperature_recovers_the_overconfidence_and_lowers_ece():
    r_c, r_r = overconfident()
    result = C.calibration(r_c, r_r, n_bins=10)
    assert result.temperature_source == "fit" and result.n_fit == 2000 and result.n_eval == 2000
    assert result.temperature == pytest.approx(3.0, rel=0.15)
    assert result.metrics_after["ece"] < result.metrics_before["ece"] / 2
    assert result.metrics_after["log_loss"] < result.metrics_before["log_loss"]
    assert result.metrics_after["accuracy"] == result.metrics_before["accuracy"]  # scaling keeps the ranking


def test_given_temperature_uses_all_pairs_and_matches_rm_metrics():
    r_c, r_r = overconfident(n=300)
    tie = np.arange(300) % 7 == 0
    result = C.calibration(r_c, r_r, tie, temperature=2.0, n_bins=5)
    assert (result.n_fit, result.n_eval, result.temperature_source) == (0, 300, "given")
    pd.testing.assert_frame_equal(result.after, M.reliability_table(r_c, r_r, tie, 2.0, 5))
    pd.testing.assert_frame_equal(result.before, M.reliability_table(r_c, r_r, tie, 1.0, 5))
    assert result.metrics_after["ece"] == pytest.approx(M.ece(r_c, r_r, tie, 2.0, 5))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        C.calibration(r_c, r_r, temperature=0.0)
    with pytest.raises(ValueError, match="tie values"):
        C.calibration(r_c, r_r[:-1])


def test_temperature_from_spec():
    scorer = type("S", (), {"temperature": 1.7})()
    assert C.temperature_from("fit", scorer) == (None, "fit")
    assert C.temperature_from("checkpoint", scorer) == (1.7, "checkpoint")
    assert C.temperature_from("0.5", scorer) == (0.5, "given")
    with pytest.raises(ValueError, match="fit, checkpoint or a number"):
        C.temperature_from("warm", scorer)


def test_run_with_a_fake_scorer_writes_report_and_plot(tmp_path):
    rows = [{"prompt": "q", "chosen": "a b c " * (i % 5 + 1), "rejected": "a " * (i % 3 + 1)} for i in range(40)]
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = C.CalibrationConfig(rm=["unused"], data=str(data), out=str(tmp_path / "cal.json"), n_bins=5)
    result, report = C.run(config, scorer=WordCountScorer())
    assert report["n_eval"] == 20 and report["temperature_source"] == "fit"
    assert (tmp_path / "cal.png").stat().st_size > 10_000
    held_out = np.sort(np.random.default_rng(0).permutation(40)[20:])
    gap = np.array([3 * (i % 5 + 1) - (i % 3 + 1) for i in held_out])  # word counts; equal counts score half
    assert result.metrics_before["accuracy"] == pytest.approx(np.mean(np.where(gap > 0, 1.0, np.where(gap == 0, 0.5, 0.0))))


def test_cli_end_to_end_with_a_tiny_rm(tmp_path, tmp_path_factory, capsys):
    rm_dir = tiny_rm(tmp_path_factory)
    rows = [{"prompt": f"question {i}", "chosen": "a careful correct answer", "rejected": "wrong"} for i in range(12)]
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    C.main(["--rm", str(rm_dir), "--data", str(data), "--temperature", "checkpoint", "--out",
            str(tmp_path / "r.json"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["temperature"] == "checkpoint" and report["n_eval"] == 12
    assert report["temperature_source"] == "checkpoint" and len(report["before"]) >= 1
    assert (tmp_path / "r.png").is_file()
