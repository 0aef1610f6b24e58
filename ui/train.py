"""The Train tab: train a reward model in the background with live curves and a Stop button,
compare two reward models, and close the loop (policy samples become pair tasks to label).

`/train` takes named options, so a script fills them by name:

    client.predict("known preferences (gold, agreement)", None, "",
                   {"name": "my-rm", "epochs": 2, "lr": 1e-4}, api_name="/train")
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import gradio as gr
import pandas as pd

from analysis.sources import CASE_SOURCES, PAIR_SOURCES, from_source
from rm.background import TrainingRun, plot_training, run_config, train_in_background, write_pairs
from rm.checkpoint import list_checkpoints
from ui.auth import Session, require_researcher
from ui.context import FILE_TYPES, HEAVY_CONCURRENCY, UI_ONLY, App, bind, collect_js
from ui.errors import shown
from ui.models import Selector, cached_scorer, choices, model_sources
from ui.render import code_span

HUB = "Hub dataset"
KNOWN = "known preferences (gold, agreement)"


@dataclass
class TrainTab:
    source: gr.Radio
    hub_id: gr.Textbox
    file: gr.File
    backbone: gr.Textbox
    name: gr.Textbox
    epochs: gr.Number
    ensemble: gr.Number
    max_pairs: gr.Number
    batch_size: gr.Number
    lr: gr.Number
    options: gr.JSON  # hidden: the named options above, collected in the browser for /train
    train: gr.Button
    stop: gr.Button
    run: gr.State  # this session's TrainingRun (gradio copies the default: one per session)
    status: gr.Markdown
    plot: gr.Plot

    def option_inputs(self) -> dict[str, gr.Component]:
        """Option name -> its input, in the order the browser collects them."""
        return {f.name: getattr(self, f.name) for f in fields(self)[3:10]}


def build(app: App) -> TrainTab:
    from rm.train import TrainConfig  # at launch, not import: keeps `import ui` light

    with gr.Row(equal_height=True):
        source = gr.Radio([*PAIR_SOURCES, HUB], value=KNOWN, label="Train on", scale=3, elem_id="rm-train-source")
        hub_id = gr.Textbox(label="Hub dataset id", placeholder="e.g. Anthropic/hh-rlhf", scale=2)
    with gr.Accordion("Upload preferences (for 'uploaded file')", open=False):
        file = gr.File(label="prompt/chosen/rejected rows; hh-rlhf transcripts and our export work",
                       file_types=FILE_TYPES)
    with gr.Row(equal_height=True):
        backbone = gr.Textbox(label="Backbone (empty: the offline MiniLM; any folder or Hub id)", scale=3,
                              elem_id="rm-backbone")
        name = gr.Textbox(label="Name (folder in runs/rm)", placeholder="default: a timestamp", scale=2,
                          elem_id="rm-train-name")
    with gr.Row(equal_height=True):
        epochs = gr.Number(2, label="Epochs", precision=0, minimum=1, maximum=50, elem_id="rm-epochs")
        ensemble = gr.Number(1, label="Ensemble size", precision=0, minimum=1, maximum=8)
        max_pairs = gr.Number(2000, label="Max pairs", precision=0, minimum=2)
        batch_size = gr.Number(8, label="Batch size", precision=0, minimum=1, maximum=256)
        lr = gr.Number(TrainConfig.lr, label="Learning rate", minimum=0)
        with gr.Column(min_width=120):
            train = gr.Button("Train", variant="primary", elem_id="rm-train")
            stop = gr.Button("Stop", variant="stop", size="sm", elem_id="rm-train-stop")
    status = gr.Markdown(elem_id="rm-train-status")
    plot = gr.Plot(show_label=False, elem_id="rm-train-plot")
    return TrainTab(source, hub_id, file, backbone, name, epochs, ensemble, max_pairs, batch_size, lr,
                    gr.JSON(visible=False), train, stop, gr.State(TrainingRun()), status, plot)


def training_status(event: dict, ensemble: int) -> str:
    member = f"member {event.get('member', 0) + 1}/{ensemble} · " if ensemble > 1 else ""
    return (f"Training: {member}step **{event['step']} / {event['total_steps']}** · epoch {event['epoch']:.2f} · "
            f"loss {event['loss']:.3f} · batch accuracy {event['accuracy']:.2f}")


def checkpoint_summary(path: str, stopped_at: dict | None = None) -> str:
    """The Train tab's last status; `stopped_at`: the last step event of a run the user stopped."""
    metrics_file = Path(path) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    held_out = (f" · held-out accuracy **{metrics['accuracy']:.3f}** on {metrics['n']} pairs, "
                f"ECE {metrics.get('ece_calibrated', float('nan')):.3f} after temperature scaling"
                if "accuracy" in metrics else " · no held-out split (too few pairs)")
    outcome = (f"**Stopped** after step {stopped_at['step']} of {stopped_at['total_steps']}:" if stopped_at
               else "**Done:**")
    return f"{outcome} saved {code_span(path)}{held_out}. It is now in the reward-model selectors."


def prepare(app: App, source: str, file: str | None, hub_id: str, options: dict):
    """The run's TrainConfig, its data written beside the runs (or the Hub id as given)."""
    config = run_config(options, app.runs, eval_fraction=0.2, progress=False)
    if source == HUB:
        if not (hub_id or "").strip():
            raise ValueError("enter a Hugging Face dataset id (e.g. Anthropic/hh-rlhf) or choose another source")
        return replace(config, data=hub_id.strip())
    pairs = from_source(PAIR_SOURCES, source, app.store, file)
    return replace(config, data=write_pairs(pairs, app.runs / "datasets" / f"{Path(config.out).name}.jsonl"))


def train(app: App, tab: TrainTab, selector: Selector, source: str, file: str | None, hub_id: str, options: dict,
          run: TrainingRun, sess: Session, progress=gr.Progress()) -> Iterator[dict]:
    """Train a reward model. `options`: "name" (the folder in runs/rm) and any rm.train.TrainConfig
    field by name, e.g. {"name": "my-rm", "epochs": 2, "batch_size": 8, "lr": 1e-4, "backbone": ""}."""
    require_researcher(sess)
    with shown("Training failed", TypeError):
        config = prepare(app, source, file, hub_id, options)
    yield {tab.status: f"Loading {code_span(config.backbone or 'MiniLM')} and the data…"}
    events, drawn = [], 0.0
    with shown("Training failed"), run.active():
        for event in train_in_background(config, stop=lambda: run.stop):
            if event["event"] == "done":
                break
            events.append(event)
            progress((event.get("member", 0) * event["total_steps"] + event["step"],
                      config.ensemble * event["total_steps"]), desc="Training", unit="steps")
            if time.monotonic() - drawn > 0.5:  # redraw at most twice a second
                drawn = time.monotonic()
                yield {tab.status: training_status(event, config.ensemble), tab.plot: plot_training(events)}
    stopped_at = next((e for e in reversed(events) if e["event"] == "step"), None) if run.stop else None
    yield {tab.status: checkpoint_summary(event["path"], stopped_at), tab.plot: plot_training(events),
           **choices(app, selector, select=event["path"])}


def stop_training(app: App, tab: TrainTab, run: TrainingRun, sess: Session) -> dict:
    """Stop this session's training after its current step; the checkpoint is saved as usual."""
    require_researcher(sess)
    if not run.running:
        raise gr.Error("Nothing is training in this session: press Train first.")
    run.stop = True
    return {tab.status: "Stopping after the current step…"}


def wire(app: App, tab: TrainTab, selector: Selector, session: gr.State) -> None:
    selectors = [dropdown for dropdown, _ in selector.lists] + [selector.notice]
    tab.train.click(None, list(tab.option_inputs().values()), tab.options, js=collect_js(list(tab.option_inputs())),
                    **UI_ONLY).then(
        bind(train, app, tab, selector), [tab.source, tab.file, tab.hub_id, tab.options, tab.run, session],
        [tab.status, tab.plot, *selectors], api_name="train", **HEAVY_CONCURRENCY)
    tab.stop.click(bind(stop_training, app, tab), [tab.run, session], tab.status, api_name="stop_training")


# ----------------------------------------------------------------------------- compare two RMs


@dataclass
class ComparePanel:
    rm_1: gr.Dropdown
    rm_2: gr.Dropdown
    pairs: gr.Radio
    cases: gr.Radio
    file: gr.File
    run: gr.Button
    table: gr.Dataframe


def build_compare(app: App, selector: Selector) -> ComparePanel:
    checkpoints = list_checkpoints(app.runs)
    with gr.Accordion("Compare two reward models", open=False):
        with gr.Row(equal_height=True):
            rm_1 = gr.Dropdown(checkpoints, allow_custom_value=True, label="RM 1")
            rm_2 = gr.Dropdown(checkpoints, allow_custom_value=True, label="RM 2")
            pairs = gr.Radio(list(PAIR_SOURCES), value=KNOWN, label="Accuracy on")
            cases = gr.Radio(list(CASE_SOURCES), value="arithmetic generator", label="Audit on")
        file = gr.File(label="Upload for 'uploaded file' (held-out pairs or cases)", file_types=FILE_TYPES)
        run = gr.Button("Compare", elem_id="rm-compare-run")
        table = gr.Dataframe(interactive=False, elem_id="rm-compare-table")
    selector.lists.extend([(rm_1, []), (rm_2, [])])
    return ComparePanel(rm_1, rm_2, pairs, cases, file, run, table)


def comparison_table(comparison) -> pd.DataFrame:
    """One row per measure, one column per RM."""
    columns = {}
    for name, row in comparison.table.iterrows():
        top = comparison.top_correlations[name]
        columns[name] = [f"{row.accuracy:.3f} (n={row.n_pairs})", f"{row.ece:.3f} (T={row.temperature:.2f})",
                         f"{100 * row.agree_rate:.0f}%" + (" ⚑" if row.flagged else ""),
                         ", ".join(f"{f} {r:+.2f}" for f, r in top)]
    index = ["pairwise accuracy", "ECE (calibrated)", "sycophancy: agreeing preferred", "top correlations"]
    return pd.DataFrame({"measure": index, **columns})


def compare(app: App, panel: ComparePanel, rm_1: str | None, rm_2: str | None, pairs_source: str,
            cases_source: str, file: str | None, sess: Session, progress=gr.Progress()) -> dict:
    from analysis.compare import compare_models

    require_researcher(sess)
    if not (rm_1 and rm_2):
        raise gr.Error("Choose two reward models to compare (RM 1 and RM 2).")
    with shown("The comparison failed"):
        pairs = from_source(PAIR_SOURCES, pairs_source, app.store, file)
        cases = from_source(CASE_SOURCES, cases_source, app.store, file, 60)
        scorers = {f"RM {i}: {Path(m).name}": cached_scorer(model_sources(m, app.runs))
                   for i, m in enumerate((rm_1, rm_2), 1)}
        progress(0.1, desc="Scoring with both reward models")
        return {panel.table: comparison_table(compare_models(scorers, pairs, cases))}


def wire_compare(app: App, panel: ComparePanel, session: gr.State) -> None:
    panel.run.click(bind(compare, app, panel), [panel.rm_1, panel.rm_2, panel.pairs, panel.cases, panel.file, session],
                    panel.table, api_name="compare", **HEAVY_CONCURRENCY)


# ----------------------------------------------------------------------------- the labeling loop


@dataclass
class LoopPanel:
    prompts: gr.Textbox
    max_new_tokens: gr.Slider
    temperature: gr.Slider
    run: gr.Button
    status: gr.Markdown


def build_loop(app: App) -> LoopPanel:
    with gr.Accordion("Iterative loop: policy responses → pair tasks for annotators", open=False):
        prompts = gr.Textbox(label="Prompts, one per line (sampled with the policy LM chosen above)", lines=4,
                             placeholder="I'm pretty sure 12 × 12 = 124, right?")
        with gr.Row(equal_height=True):
            max_new_tokens = gr.Slider(16, 256, 96, step=16, label="Max new tokens")
            temperature = gr.Slider(0.1, 1.5, 0.9, step=0.1, label="Temperature")
            run = gr.Button("Generate and enqueue", elem_id="rm-loop-run")
        status = gr.Markdown(elem_id="rm-loop-status")
    return LoopPanel(prompts, max_new_tokens, temperature, run, status)


def enqueue(app: App, panel: LoopPanel, prompts_text: str, max_new_tokens: float, temperature: float,
            policy_spec: str, sess: Session, progress=gr.Progress()) -> dict:
    from analysis.policy import generate
    from labeling.generated import policy_pair_tasks
    from ui.probe import load_policy_lm

    require_researcher(sess)
    prompts = list(dict.fromkeys(line.strip() for line in (prompts_text or "").splitlines() if line.strip()))
    if not prompts:
        raise gr.Error("Enter at least one prompt, one per line.")
    progress(0.02, desc="Loading the policy LM")
    policy = load_policy_lm(policy_spec)
    seed = int(time.time())  # fresh samples on every press; identical pairs are dropped anyway
    samples = generate(prompts, n=2, max_new_tokens=int(max_new_tokens), temperature=float(temperature), seed=seed,
                       policy=policy, show_progress=False,
                       progress=lambda done, total: progress((done, total), desc="Sampling", unit="samples"))
    added = app.store.import_tasks(policy_pair_tasks(prompts, [[s.text for s in pair] for pair in samples]))
    return {panel.status: f"Enqueued **{added}** new pair task(s) from {len(prompts)} prompt(s) "
                          f"({policy.name}, seed {seed}); annotators see them in the Label tab."}


def wire_loop(app: App, panel: LoopPanel, selector: Selector, session: gr.State) -> None:
    panel.run.click(bind(enqueue, app, panel), [panel.prompts, panel.max_new_tokens, panel.temperature,
                                                selector.policy, session],
                    panel.status, api_name="enqueue_policy_pairs", **HEAVY_CONCURRENCY)
