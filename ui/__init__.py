"""The lab's Gradio UI: `build_ui(App(store)) -> gr.Blocks`, `launch(demo)`.

Tabs: Label (everyone), Dashboard and Research (researchers; on a local run with no roles
configured, everyone). Research has a shared reward-model and policy selector, then Probe,
Correlations, Audits, Train and Goodhart. Each tab is a module with `build` (layout, returns a
dataclass of components), module-level handlers bound to the `App`, and `wire` (events).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ui import audits, correlations, dashboard, goodhart, label, models, probe, train
from ui.auth import Session
from ui.context import App, Shell

STATIC = Path(__file__).parent / "static"


@dataclass
class Research:
    selector: models.Selector
    probe: probe.ProbeTab
    correlations: correlations.CorrelationsTab
    audits: audits.AuditsTab
    train: train.TrainTab
    compare: train.ComparePanel
    loop: train.LoopPanel
    goodhart: goodhart.GoodhartTab
    rl: goodhart.RLPanel


def build_research(app: App) -> Research:
    """The researcher playground's layout: the shared selector, then one sub-tab per tool."""
    selector = models.build(app)
    with gr.Tabs():
        with gr.Tab("Probe", id="probe"):
            probe_tab = probe.build(app)
        with gr.Tab("Correlations", id="correlations"):
            correlations_tab = correlations.build(app)
        with gr.Tab("Audits", id="audits"):
            audits_tab = audits.build(app)
        with gr.Tab("Train", id="train"):
            train_tab = train.build(app)
            compare = train.build_compare(app, selector)
            loop = train.build_loop(app)
        with gr.Tab("Goodhart", id="goodhart"):
            goodhart_tab = goodhart.build(app, selector)
            rl = goodhart.build_rl(app, selector)
    return Research(selector, probe_tab, correlations_tab, audits_tab, train_tab, compare, loop, goodhart_tab, rl)


def wire_research(app: App, r: Research, session: gr.State) -> None:
    models.wire(app, r.selector, session)
    probe.wire(app, r.probe, r.selector, session)
    correlations.wire(app, r.correlations, r.selector, session)
    audits.wire(app, r.audits, r.selector, session)
    train.wire(app, r.train, r.selector, session)
    train.wire_compare(app, r.compare, session)
    train.wire_loop(app, r.loop, r.selector, session)
    goodhart.wire(app, r.goodhart, r.selector, session)
    goodhart.wire_rl(app, r.rl, r.selector, session)


def build_ui(app: App) -> gr.Blocks:
    """The whole app on `app.store`; researcher tabs are hidden until a session has the role."""
    with gr.Blocks(title=app.title) as demo:
        # a local run (no roles configured) is a researcher before signing in
        session = gr.State(Session(researcher=app.access.open))
        gr.Markdown(f"## {app.title}")
        with gr.Tabs():
            with gr.Tab("Label", id="label"):
                label_tab = label.build(app)
            with gr.Tab("Dashboard", id="dashboard", visible=app.access.open) as dash_tab:
                dash = dashboard.build(app)
            with gr.Tab("Research", id="research", visible=app.access.open) as research_tab:
                research = build_research(app)
        label.wire(app, label_tab, Shell(demo, session, (dash_tab, research_tab)))
        dashboard.wire(app, dash, session, dash_tab)
        wire_research(app, research, session)
    return demo


def page_head() -> str:
    """<head> script: the keyboard shortcuts (keys are ignored while typing in a text box)."""
    script = (STATIC / "shortcuts.js").read_text(encoding="utf-8")
    return f"<script>window.RMLAB_SHORTCUTS = {json.dumps(label.SHORTCUTS)};\n{script}</script>"


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, **kwargs: Any):
    """Launch with the app's theme, CSS and keyboard shortcuts (gradio 6 takes them here).

    Two queue settings keep a label call cheap under a crowd (bench/label_load.py): Gradio's
    monitoring summary (a pandas DataFrame of the last 10,000 events, rebuilt after every event
    by default) is rebuilt every 1,000 events instead, and queue positions go out once a second
    rather than to every waiting client whenever any event starts.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")  # read by demo.queue()
    return demo.queue(default_concurrency_limit=8, status_update_rate=1.0).launch(
        server_name=host, server_port=port, share=share, css=(STATIC / "app.css").read_text(encoding="utf-8"),
        head=page_head(), theme=gr.themes.Soft(), footer_links=["api"], **kwargs)
