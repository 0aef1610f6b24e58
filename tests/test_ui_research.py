"""The research tabs (ui.models, probe, correlations, audits, train, goodhart): the score
endpoint, researcher authorisation, in-app training, the policy -> pair-task loop over HTTP,
and handlers called directly. Tiny models in tmp_path only."""
from __future__ import annotations

import json
import math
import re
import time

import pandas as pd
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import gradio as gr

from app_support import lab_ui, serve
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks
from rm.checkpoint import list_checkpoints
from rm.background import TrainingRun
from rm.device import torch_threads
from analysis.compare import score_pair
from rm.score import load_scorer
from rm.testing import tiny_backbone, tiny_decoder
from rm.train import TrainConfig, train
from ui import audits, correlations, models, probe
from ui.auth import Access, Session
from ui.context import App

GOOD = ["yes good correct answer", "sure thanks help", "good right answer"]
BAD = ["no bad wrong answer", "rude harmful wrong", "bad worse answer"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A run folder with two tiny checkpoints (rm-a, rm-b), a tiny backbone and a tiny policy."""
    root = tmp_path_factory.mktemp("lab")
    backbone = tiny_backbone(root / "backbone")
    rows = [{"prompt": f"question {i}", "chosen": GOOD[i % 3], "rejected": BAD[i % 3]} for i in range(24)]
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = root / "runs"
    for name, seed in (("rm-a", 0), ("rm-b", 1)):
        train(TrainConfig(data=str(data), out=str(runs / "rm" / name), backbone=backbone, from_scratch=True,
                          epochs=1, batch_size=8, lr=3e-3, max_length=32, eval_fraction=0.25, seed=seed,
                          progress=False, precision="fp32"))
    return {"runs": runs, "backbone": backbone, "policy": tiny_decoder(root / "policy")}


def serve_lab(tmp_path, access: Access, runs):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=2, triads=0, agreement=4, gold=4))
    demo = lab_ui(store, access, runs)
    return store, demo, serve(demo)


@pytest.fixture
def open_lab(tmp_path, lab):
    store, demo, url = serve_lab(tmp_path, Access(), lab["runs"])
    yield Client(url, verbose=False), store
    demo.close()
    store.close()


@pytest.fixture(scope="module")
def guarded_url(tmp_path_factory, lab):
    store, demo, url = serve_lab(tmp_path_factory.mktemp("guarded"), Access(admin_token="s3cret"), lab["runs"])
    yield url
    demo.close()
    store.close()


# ----------------------------------------------------------------------------- score endpoint


def test_score_endpoint_matches_the_scorer(open_lab, lab):
    client, _ = open_lab
    path = str(lab["runs"] / "rm" / "rm-a")
    out = client.predict("question 1", "yes good correct answer", "rude harmful wrong", "rm-a", api_name="/score")
    scorer = load_scorer(path)  # the app's precision (bf16 where the CPU has it): equal to rounding
    ref = scorer.score("question 1", ["yes good correct answer", "rude harmful wrong"]).mean
    assert out["score_a"] == pytest.approx(ref[0], abs=5e-3) and out["score_b"] == pytest.approx(ref[1], abs=5e-3)
    expected = 1 / (1 + math.exp(-(out["score_a"] - out["score_b"]) / out["temperature"]))
    assert out["p_a_better"] == pytest.approx(expected, abs=1e-9)
    assert out["temperature"] == pytest.approx(scorer.temperature)
    assert out["members"] == 1 and "std_a" not in out and out["model"] == "rm-a"


def test_score_endpoint_ensemble_reports_spread_and_defaults_to_newest(open_lab, lab):
    client, _ = open_lab
    out = client.predict("q", "good answer", "bad answer", "rm-a, rm-b", api_name="/score")
    assert out["members"] == 2 and out["std_a"] >= 0 and out["std_b"] >= 0
    assert out["std_a"] + out["std_b"] > 0  # two differently seeded models disagree somewhere
    newest = list_checkpoints(lab["runs"])[0][0]
    assert client.predict("q", "a", "b", api_name="/score")["model"] == newest


def test_score_endpoint_on_a_guarded_server_takes_only_listed_checkpoints(guarded_url, lab):
    client = Client(guarded_url, verbose=False)
    assert client.predict("q", "a", "b", "rm-b", api_name="/score")["model"] == "rm-b"  # open: no sign-in
    with pytest.raises(AppError, match="must be one of"):
        client.predict("q", "a", "b", lab["backbone"], api_name="/score")


# ----------------------------------------------------------------------------- authorisation


@pytest.mark.parametrize("api_name, args", [
    ("/train", ("known preferences (gold, agreement)", None, "", {"name": "x", "epochs": 1})),
    ("/train_starter", ()),
    ("/stop_training", ()),
    ("/enqueue_policy_pairs", ("Is 2 + 2 = 5?", 16, 1.0, "")),
    ("/sycophancy_audit", ("agreement tasks (seed)", 5, 0.5, ["rm-a"], None)),
    ("/correlations", ("seed tasks", 10, "length_words", ["rm-a"], None)),
    ("/goodhart", ({"gold": "arithmetic", "n_prompts": 2, "n": 2}, "", ["rm-a"])),
    ("/rl", ({"gold": "truthful", "steps": 1}, "", ["rm-a"])),
    ("/stop_rl", ()),
])
@pytest.mark.parametrize("token", ["", "wrong"])
def test_researcher_endpoints_refuse_non_researchers(guarded_url, lab, api_name, args, token):
    client = Client(guarded_url, verbose=False)
    client.predict("bob", token, api_name="/sign_in")
    with pytest.raises(AppError, match="needs the researcher role"):
        client.predict(*args, api_name=api_name)
    assert not (lab["runs"] / "rm" / "x").exists()


def test_the_token_unlocks_the_audit(guarded_url):
    client = Client(guarded_url, verbose=False)
    client.predict("dana", "s3cret", api_name="/sign_in")
    summary, _plot, cases = client.predict("agreement tasks (seed)", 5, 0.5, ["rm-a"], None,
                                           api_name="/sycophancy_audit")
    assert summary.startswith("**4 cases**")
    assert len(cases["data"]) == 4


def test_analyses_run_through_the_api(open_lab):
    client, _ = open_lab
    summary, table, _plot = client.predict("seed tasks", 400, "length_words", ["rm-a"], None,
                                           api_name="/correlations")
    assert summary.startswith("**20 responses**")  # 2 pairs + 4 agreement + 4 gold tasks, 2 responses each
    assert {row[0] for row in table["data"]} >= {"length_words", "flattery"}
    _plot, cf = client.predict("seed tasks", 6, ["rm-a"], None, api_name="/counterfactual")
    assert {row[0] for row in cf["data"]} >= {"pad_filler", "flattery"} and all(row[1] == 6 for row in cf["data"])
    compared = client.predict("rm-a", "rm-b", "known preferences (gold, agreement)", "arithmetic generator", None,
                              api_name="/compare")
    assert compared["headers"] == ["measure", "RM 1: rm-a", "RM 2: rm-b"]
    rows = {row[0]: row[1:] for row in compared["data"]}
    assert rows["pairwise accuracy"][0].endswith("(n=8)") \
        and re.fullmatch(r"\d+%( ⚑)?", rows["sycophancy: agreeing preferred"][0])


def test_goodhart_runs_then_replots_from_the_cache(open_lab, lab):
    client, _ = open_lab
    options = {"gold": "arithmetic", "ensemble": [], "prompts": "arithmetic", "n_prompts": 2, "n": 4,
               "max_new_tokens": 4, "lam": 1.0, "beta_kl": 0.5}
    args = (options, lab["policy"], ["rm-a"])
    summary, _plot, fits = client.predict(*args, api_name="/goodhart")
    assert summary.startswith("2 prompts × N=4 samples (sampled and cached")
    assert [row[0] for row in fits["data"]][:2] == ["proxy", "kl_penalised"]
    assert "conservative (skipped" in fits["data"][-1][0]  # a single proxy has no ensemble
    assert len(list((lab["runs"] / "goodhart").glob("*.parquet"))) == 1
    again, _plot, _fits = client.predict(*args[:-1], ["rm-a", "rm-b"], api_name="/goodhart")
    assert again.startswith("2 prompts × N=4 samples (read from the cache")


def test_a_missing_upload_says_what_to_do(open_lab):
    client, _ = open_lab
    with pytest.raises(AppError, match="no file uploaded: drop a JSONL"):
        client.predict("uploaded file", 5, 0.5, ["rm-a"], None, api_name="/sycophancy_audit")


# ----------------------------------------------------------------------------- train, enqueue


def test_in_app_training_adds_a_checkpoint_to_the_selector(open_lab, lab):
    client, _ = open_lab
    before = {name for name, _ in list_checkpoints(lab["runs"])}
    options = {"backbone": lab["backbone"], "name": "in app/1", "epochs": 2, "ensemble": 1, "max_pairs": 100,
               "batch_size": 4, "lr": 1e-3}
    status, _plot, models, *_ = client.predict("known preferences (gold, agreement)", None, "", options,
                                               api_name="/train")
    out = lab["runs"] / "rm" / "in-app-1"
    assert status.startswith("**Done:**") and str(out) in status
    # the new checkpoint is offered and selected for probing
    assert models["value"] == [str(out)] and ["in-app-1", str(out)] in models["choices"]
    assert {name for name, _ in list_checkpoints(lab["runs"])} - before == {"in-app-1"}
    config = json.loads((out / "rmlab_config.json").read_text())
    assert config["train_config"]["epochs"] == 2
    # the training data (4 gold + 4 agreement known preferences) is kept beside the runs
    assert len((lab["runs"] / "datasets" / "in-app-1.jsonl").read_text().splitlines()) == 8
    assert client.predict("q", "a", "b", "in-app-1", api_name="/score")["model"] == "in-app-1"
    with pytest.raises(AppError, match="already exists"):
        client.predict("known preferences (gold, agreement)", None, "", options | {"name": "in-app-1"},
                       api_name="/train")
    with pytest.raises(AppError, match="did you mean 'lr'"):  # options are TrainConfig fields by name
        client.predict("known preferences (gold, agreement)", None, "", {"learning_rate": 1e-3}, api_name="/train")


def test_stop_ends_this_sessions_training_after_a_step_and_saves(open_lab, lab):
    client, _ = open_lab
    with pytest.raises(AppError, match="Nothing is training in this session"):
        client.predict(api_name="/stop_training")
    # 6 training pairs, batch 4, 50 epochs: 100 steps, far more than pass before the stop arrives
    options = {"backbone": lab["backbone"], "name": "stopped", "epochs": 50, "batch_size": 4, "lr": 1e-3}
    job = client.submit("known preferences (gold, agreement)", None, "", options, api_name="/train")
    deadline = time.monotonic() + 60
    while not any(str(out[0]).startswith("Training:") for out in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), "training never reported a step"
        time.sleep(0.05)
    with pytest.raises(AppError, match="Nothing is training"):  # another session has no run to stop
        Client(client.src, verbose=False).predict(api_name="/stop_training")
    assert client.predict(api_name="/stop_training") == "Stopping after the current step…"
    status, *_ = job.result(timeout=60)
    metrics = json.loads((lab["runs"] / "rm" / "stopped" / "metrics.json").read_text())
    assert metrics["stopped"] and metrics["steps"] < 100
    assert status.startswith(f"**Stopped** after step {metrics['steps']} of 100: saved")


def test_training_without_labels_says_what_to_do(open_lab, lab):
    client, _ = open_lab
    with pytest.raises(AppError, match="no labels collected yet"):
        client.predict("collected labels", None, "", {"backbone": lab["backbone"], "name": "nolabels"},
                       api_name="/train")
    assert not (lab["runs"] / "rm" / "nolabels").exists()


def test_enqueue_adds_policy_pair_tasks(open_lab, lab):
    client, store = open_lab
    before = len(store.tasks("pair"))
    status = client.predict("Is 2 + 2 = 5?\nWhat is 3 × 3?\n\nIs 2 + 2 = 5?", 16, 1.0, lab["policy"],
                            api_name="/enqueue_policy_pairs")
    new = [t for t in store.tasks("pair") if t.category == "policy"]
    assert len(store.tasks("pair")) == before + len(new) and 1 <= len(new) <= 2
    assert status.startswith(f"Enqueued **{len(new)}** new pair task(s) from 2 prompt(s)")
    assert {t.prompt for t in new} <= {"Is 2 + 2 = 5?", "What is 3 × 3?"}
    assert all(len(t.responses) == 2 and t.responses[0] != t.responses[1] for t in new)


# ----------------------------------------------------------------------------- helpers


def test_api_models_resolves_names_and_guards_paths(lab):
    runs = lab["runs"]
    assert models.api_models("rm-a", Access(), runs) == [str(runs / "rm" / "rm-a")]
    assert models.api_models("some/hub-id", Access(), runs) == ["some/hub-id"]
    with pytest.raises(gr.Error, match="must be one of"):
        models.api_models("some/hub-id", Access(admin_token="t"), runs)
    with pytest.raises(gr.Error, match="No reward model in the run folder"):
        models.api_models("", Access(), runs / "empty")


def test_correlation_table_orders_flagged_first():
    table = pd.DataFrame({"feature": ["a", "b"], "pearson": [0.1, -0.6], "pearson_lo": [0.0, -0.8],
                          "pearson_hi": [0.2, -0.4], "spearman": [0.1, -0.5], "spearman_lo": [0.0, -0.7],
                          "spearman_hi": [0.2, -0.3], "flagged": [False, True]})
    out = correlations.correlation_table(table)
    assert out.feature.tolist() == ["b", "a"]
    assert out.iloc[0]["pearson [95% CI]"] == "-0.60 [-0.80, -0.40]" and out.iloc[0]["flag"]


# ----------------------------------------------------------------------------- handlers, no server


@pytest.fixture
def research(tmp_path, lab):
    """The research tabs built (not served) on a store with known preferences and the lab's runs."""
    from ui import build_research

    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=2, triads=0, agreement=4, gold=4))
    app = App(store, Access(admin_token="t"), lab["runs"])
    with gr.Blocks():
        tabs = build_research(app)
    yield app, tabs
    store.close()


def test_probe_handler_scores_both_sides_and_diffs_features(research, lab):
    app, r = research
    researcher = Session(researcher=True)
    with pytest.raises(gr.Error, match="needs the researcher role"):
        probe.probe(app, r.probe, "q", "a", "b", ["rm-a"], Session())
    out = probe.probe(app, r.probe, "q", "Great question! yes good", "no bad wrong", ["rm-a"], researcher)
    scores = load_scorer(str(lab["runs"] / "rm" / "rm-a")).score("q", ["Great question! yes good", "no bad wrong"])
    assert f"{scores.mean[0]:+.3f}"[:-1] in out[r.probe.card] and "single model" in out[r.probe.card]
    assert '<tr class="rm-diff"><td title="' in out[r.probe.features] and "flattery" in out[r.probe.features]
    # a model that cannot load is shown in the card, not raised on every keystroke
    missing = probe.probe(app, r.probe, "q", "a", "b", ["no-such-rm"], researcher)[r.probe.card]
    assert "rm-empty" in missing and "Could not load the reward model no-such-rm" in missing


def test_reliability_handler_draws_the_libraries_numbers(research, lab):
    from analysis.calibration import pair_calibration
    from analysis.sources import known_pairs

    app, r = research
    fig = audits.reliability(app, r.audits, "known preferences (gold, agreement)", ["rm-a"], None,
                             Session(researcher=True))[r.audits.rel_plot]
    expected = pair_calibration(load_scorer(str(lab["runs"] / "rm" / "rm-a")), known_pairs(app.store), "checkpoint")
    titles = [fig._suptitle.get_text()] if fig._suptitle else [ax.get_title() for ax in fig.axes]
    assert f"rm-a: 8 pairs, accuracy {expected.metrics_after['accuracy']:.2f}" in titles
    with pytest.raises(gr.Error, match="The reliability diagram failed: could not read uploaded file: no file"):
        audits.reliability(app, r.audits, "uploaded file", ["rm-a"], None, Session(researcher=True))


def test_a_newcomer_is_offered_a_starter_rm(tmp_path, lab, monkeypatch):
    from ui import build_research

    monkeypatch.setenv("RMLAB_BACKBONE", lab["backbone"])  # the starter's default backbone, tiny here
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=0, triads=0, agreement=4, gold=4))
    app = App(store, Access(), tmp_path / "runs")  # no checkpoint yet
    with gr.Blocks():
        r = build_research(app)
    assert r.selector.notice.visible and r.selector.models.value == []
    out = models.train_starter(app, r.selector, Session(researcher=True), progress=lambda *a, **k: None)
    starter = str(tmp_path / "runs" / "rm" / "starter")
    assert out[r.selector.models].value == [starter] and out[r.selector.notice].visible is False
    assert ("starter", starter) in out[r.compare.rm_1].choices
    assert json.loads((tmp_path / "runs" / "rm" / "starter" / "rmlab_config.json").read_text())
    store.close()


def test_the_probe_loads_a_hub_style_decoder_rm_by_folder(tmp_path, research):
    """Any Hub RM in the playground: a decoder RM with a chat template, given as a folder (as it
    sits in the Hub cache) in the model selector, scores in the probe as rm.score does."""
    from rm.testing import tiny_qwen3_rm

    app, r = research
    tiny_qwen3_rm(tmp_path / "qwen3-rm")
    folder = str(tmp_path / "qwen3-rm")
    out = probe.probe(app, r.probe, "what is two plus two?", "four", "five", [folder], Session(researcher=True))
    expected = score_pair(load_scorer(folder), "what is two plus two?", "four", "five")
    assert f"{expected['score_a']:+.3f}" in out[r.probe.card] and f"{expected['p_a_better']:.2f}" in out[r.probe.card]


def test_rl_runs_are_kept_and_drawn_side_by_side(research, lab):
    from ui import goodhart

    app, r = research
    researcher = Session(researcher=True)
    with pytest.raises(gr.Error, match="Nothing is running in this session"):
        goodhart.stop_rl(app, r.rl, TrainingRun(), researcher)
    options = {"gold": "arithmetic", "prompts": "plain", "steps": 2, "eval_every": 1, "n_train_prompts": 4,
               "n_eval_prompts": 2, "prompts_per_step": 2, "k": 2, "n_eval": 2, "max_new_tokens": 4, "lora_r": 2}
    progress = lambda *a, **k: None  # noqa: E731
    out = goodhart.rl(app, r.rl, options, lab["policy"], ["rm-a"], TrainingRun(), {}, researcher, progress)
    first = out[r.rl.history]
    assert list(first) == ["rm-a: β=0.05"] and first["rm-a: β=0.05"].curve.step.tolist() == [0, 1, 2]
    assert str(lab["runs"] / "rl") in out[r.rl.status]
    out = goodhart.rl(app, r.rl, options | {"honesty_gamma": 1.0}, lab["policy"], ["rm-a"], TrainingRun(), first,
                      researcher, progress)
    assert list(out[r.rl.history]) == ["rm-a: β=0.05", "rm-a: β=0.05, γ=1"]
    assert out[r.rl.table].run.tolist() == ["rm-a: β=0.05", "rm-a: β=0.05, γ=1"]
    again = goodhart.rl(app, r.rl, options, lab["policy"], ["rm-a"], TrainingRun(), {}, researcher, progress)
    assert "(read from the run folder)" in again[r.rl.status]  # the finished run is kept, not recomputed
    with pytest.raises(gr.Error, match="did you mean"):
        goodhart.rl(app, r.rl, {"kl_coeff": 1.0}, lab["policy"], ["rm-a"], TrainingRun(), {}, researcher, progress)
