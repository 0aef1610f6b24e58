"""analysis.counterfactual: exact perturbations, delta statistics with a fake scorer, CLI."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.counterfactual import (
    PERTURBATIONS,
    as_list,
    main,
    mean_ci,
    pad_with_filler,
    perturb,
    plot_deltas,
    probe,
    repeat_sentence,
    split_sentences,
    summarize,
)
from analysis_support import WordCountScorer, tiny_rm

RESPONSE = "It is 4. Two plus two is four!"


def test_perturbations_rewrite_style_only_with_exact_outputs():
    apply = {name: p.fn("What is 2+2?", RESPONSE) for name, p in PERTURBATIONS.items()}
    assert apply["flattery"] == "Great question! It is 4. Two plus two is four!"
    assert apply["hedges"] == ("I'm not entirely sure, but It is 4. Two plus two is four! "
                               "That said, it may depend on the details.")
    assert apply["bullet_list"] == "- It is 4.\n- Two plus two is four!"
    assert apply["bold_list"] == "- **It is 4.**\n- **Two plus two is four!**"
    assert apply["repeat_sentence"] == "It is 4. Two plus two is four! It is 4."
    assert apply["agree_with_user"] == "You're absolutely right. It is 4. Two plus two is four!"
    assert apply["pad_filler"].startswith(RESPONSE + " To put it another way")
    for name, text in apply.items():
        assert RESPONSE.split(". ")[0].strip("!") in text, name  # the content survives every rewrite


def test_pad_with_filler_reaches_double_length_with_whole_sentences():
    padded = pad_with_filler("Short.")
    assert padded == "Short. To put it another way, the point above still stands."
    long = "x" * 200
    assert 400 <= len(pad_with_filler(long)) < 400 + 70


def test_sentence_helpers():
    assert split_sentences("One. Two? Three") == ["One.", "Two?", "Three"]
    assert split_sentences("   ") == []
    assert as_list("No stop here") == "- No stop here"
    assert repeat_sentence("") == ""


def test_perturb_makes_one_row_per_response_and_perturbation():
    table = perturb(["p1", "p2"], ["A. B.", "C."], ["flattery", "bullet_list"])
    assert table[["row", "perturbation"]].values.tolist() == [[0, "flattery"], [1, "flattery"],
                                                              [0, "bullet_list"], [1, "bullet_list"]]
    assert table["text"].tolist()[2] == "- A.\n- B."
    with pytest.raises(ValueError, match="unknown perturbations \\['bold'\\]"):
        perturb(["p"], ["r"], ["bold"])


def test_probe_with_a_word_count_scorer_gives_known_deltas():
    responses = ["It is 4.", "The capital of France is Paris. It is large.", "Yes."]
    report = probe(WordCountScorer(), ["q"] * 3, responses, n_boot=200)
    s = report.summary.set_index("perturbation")
    assert s.loc["flattery", "mean_delta"] == 2.0 and s.loc["flattery", "win_rate"] == 1.0
    assert s.loc["agree_with_user", "mean_delta"] == 3.0
    # bullets add one "-" token per sentence: 1, 2, 1 sentences
    assert s.loc["bullet_list", "mean_delta"] == pytest.approx(4 / 3)
    # repeating the first sentence adds its words: 3, 6, 1
    assert s.loc["repeat_sentence", "median"] == 3.0
    assert s.loc["pad_filler", "win_rate"] == 1.0
    assert s.loc["flattery", "p_win"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert (s["n"] == 3).all()
    row = report.deltas.query("perturbation == 'flattery' and row == 1").iloc[0]
    assert (row["original"], row["perturbed"]) == (9.0, 11.0)
    assert report.to_dict()["n"] == 3


def test_summary_statistics_and_mean_ci_against_numpy():
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 2.0, size=500)
    deltas = pd.DataFrame({"row": range(500), "perturbation": "x", "delta": d})
    s = summarize(deltas, temperature=2.0, n_boot=500, seed=3).iloc[0]
    assert s["mean_delta"] == pytest.approx(d.mean())
    assert s["q25"] == pytest.approx(np.quantile(d, 0.25))
    assert s["win_rate"] == pytest.approx((d > 0).mean())
    assert s["p_win"] == pytest.approx(np.mean(1 / (1 + np.exp(-d / 2.0))))
    half = 1.96 * d.std(ddof=1) / np.sqrt(500)  # the normal-theory interval for comparison
    assert s["ci_lo"] == pytest.approx(d.mean() - half, abs=0.04)
    assert s["ci_hi"] == pytest.approx(d.mean() + half, abs=0.04)
    assert np.isnan(mean_ci(np.array([1.0]), 100, 0.95, 0)).all()  # one value: no interval


def test_plot_has_one_bar_per_perturbation():
    report = probe(WordCountScorer(), ["q", "q"], ["A b.", "C d e."], ["flattery", "hedges"], n_boot=50)
    fig = plot_deltas(report)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 2
    assert fig.canvas.manager is None  # a plain Figure: pyplot's registry does not hold it


def test_cli_end_to_end_with_a_tiny_model(tmp_path, tmp_path_factory, capsys):
    rm_dir = tiny_rm(tmp_path_factory)
    data = tmp_path / "responses.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response": f"Answer {i}. It is fine."}) + "\n"
                            for i in range(6)))
    out = tmp_path / "cf.json"
    main(["--rm", str(rm_dir), "--data", str(data), "--perturbations", "flattery", "pad_filler",
          "--n-boot", "50", "--out", str(out), "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 6
    assert [p["perturbation"] for p in printed["perturbations"]] == ["flattery", "pad_filler"]
    assert all(0.0 <= p["win_rate"] <= 1.0 and p["n"] == 6 for p in printed["perturbations"])
    assert printed["config"]["perturbations"] == ["flattery", "pad_filler"]
    assert out.is_file() and out.with_suffix(".png").is_file()
