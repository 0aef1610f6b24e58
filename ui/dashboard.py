"""The Dashboard tab (researchers): label statistics, two plots, and the dataset export."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from labeling import dashboard
from labeling.export import AGGREGATORS, WRITERS, ExportConfig, export_zip
from ui.auth import Session, require_researcher
from ui.context import App, bind
from ui.errors import shown


@dataclass
class DashboardTab:
    refresh: gr.Button
    summary: gr.Markdown
    per_annotator: gr.Dataframe
    per_kind: gr.Dataframe
    labels_plot: gr.Plot
    bias_plot: gr.Plot
    aggregate: gr.Radio
    export_format: gr.Radio
    export: gr.Button
    export_file: gr.File


def build(app: App) -> DashboardTab:
    with gr.Row(equal_height=True):
        refresh = gr.Button("Refresh", variant="primary", scale=0, min_width=120, elem_id="rm-refresh")
        summary = gr.Markdown(elem_id="rm-summary")
    per_annotator = gr.Dataframe(label="Per annotator (95% confidence intervals in brackets)",
                                 interactive=False, elem_id="rm-per-annotator")
    per_kind = gr.Dataframe(label="Per task kind", interactive=False, elem_id="rm-per-kind")
    with gr.Row():
        labels_plot = gr.Plot(show_label=False, elem_id="rm-labels-plot")
        bias_plot = gr.Plot(show_label=False, elem_id="rm-bias-plot")
    with gr.Accordion("Export the dataset", open=False):
        with gr.Row(equal_height=True):
            aggregate = gr.Radio(list(AGGREGATORS), value="none", label="Aggregate labels")
            export_format = gr.Radio(list(WRITERS), value="jsonl", label="Format")
            export = gr.Button("Export", elem_id="rm-export")
        export_file = gr.File(label="Dataset", interactive=False, elem_id="rm-export-file")
    return DashboardTab(refresh, summary, per_annotator, per_kind, labels_plot, bias_plot, aggregate,
                        export_format, export, export_file)


def summary_text(labels: pd.DataFrame) -> str:
    s = dashboard.summary(labels)
    if not s:
        return "**No labels yet.** Label a few tasks, then press Refresh."
    n, people, alpha = s["labels"], s["annotators"], s["alpha"]
    return (f"**{n} label{'s' * (n != 1)}** from **{people} annotator{'s' * (people != 1)}** · "
            f"Krippendorff's α **{'–' if pd.isna(alpha) else f'{alpha:.2f}'}** · "
            f"gold accuracy **{dashboard.percent(s['gold_accuracy'])}** · "
            f"left picks **{dashboard.with_ci(*s['left_share'])}** · "
            f"agreeing response won **{dashboard.with_ci(*s['agreeing_won'])}** · "
            f"triads **{s['completed_triads']}** complete, **{s['cycles']}** cycles")


def refresh(app: App, tab: DashboardTab, sess: Session) -> dict:
    """Label statistics (researchers only)."""
    require_researcher(sess)
    labels = app.store.labels()
    return {tab.summary: summary_text(labels), tab.per_annotator: dashboard.annotator_table(labels),
            tab.per_kind: dashboard.kind_table(labels), tab.labels_plot: dashboard.plot_label_counts(labels),
            tab.bias_plot: dashboard.plot_biases(labels)}


def export_dataset(app: App, aggregate: str, fmt: str, sess: Session) -> str:
    """Export the labels as a preference dataset file (researchers only)."""
    require_researcher(sess)
    with shown("The export failed"):
        config = ExportConfig(out=tempfile.mkdtemp(prefix="rmlab-export-"), format=fmt, aggregate=aggregate)
        return str(export_zip(app.store, config))


def wire(app: App, tab: DashboardTab, session: gr.State, dash_tab: gr.Tab) -> None:
    outputs = [tab.summary, tab.per_annotator, tab.per_kind, tab.labels_plot, tab.bias_plot]
    gr.on([tab.refresh.click, dash_tab.select], bind(refresh, app, tab), session, outputs, api_name="dashboard")
    tab.export.click(bind(export_dataset, app), [tab.aggregate, tab.export_format, session], tab.export_file,
                     api_name="export_dataset")
