"""The Correlations tab: score many responses, correlate the reward with each style feature
(Pearson and Spearman with bootstrap CIs, |r| > 0.3 flagged), and scatter it against one."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from analysis.features import FEATURES
from analysis.sources import RESPONSE_SOURCES, from_source, subsample
from ui.auth import Session, require_researcher
from ui.context import FILE_TYPES, HEAVY_CONCURRENCY, UI_ONLY, App, bind
from ui.errors import shown
from ui.models import Selector, cached_scorer, model_sources
from ui.render import code_span


@dataclass
class CorrelationsTab:
    source: gr.Radio
    max_rows: gr.Number
    run: gr.Button
    file: gr.File
    summary: gr.Markdown
    table: gr.Dataframe
    feature: gr.Dropdown
    plot: gr.Plot
    report: gr.State  # this user's last CorrelationReport, for re-plotting


def build(app: App) -> CorrelationsTab:
    with gr.Row(equal_height=True):
        source = gr.Radio(list(RESPONSE_SOURCES), value="seed tasks", label="Responses", scale=3)
        max_rows = gr.Number(400, label="Max responses", precision=0, minimum=3, scale=1)
        run = gr.Button("Score and correlate", variant="primary", scale=1, elem_id="rm-corr-run")
    with gr.Accordion("Upload a file (for 'uploaded file')", open=False):
        file = gr.File(label="JSONL/CSV/Parquet: prompt+response rows or preference rows", file_types=FILE_TYPES)
    summary = gr.Markdown(elem_id="rm-corr-summary")
    with gr.Row():
        table = gr.Dataframe(interactive=False, scale=3, elem_id="rm-corr-table",
                             label="Correlation of the reward with each feature")
        with gr.Column(scale=2):
            feature = gr.Dropdown(list(FEATURES), value="length_words", label="Scatter against",
                                  elem_id="rm-corr-feature")
            plot = gr.Plot(show_label=False, elem_id="rm-corr-plot")
    return CorrelationsTab(source, max_rows, run, file, summary, table, feature, plot, gr.State(None))


def correlation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Readable correlations: r [95% CI] per method, flagged first, then by |pearson|."""
    ci = lambda r, lo, hi: "–" if pd.isna(r) else f"{r:+.2f} [{lo:+.2f}, {hi:+.2f}]"  # noqa: E731
    order = table.assign(_abs=table.pearson.abs()).sort_values(["flagged", "_abs"], ascending=False)
    return pd.DataFrame({
        "feature": order.feature,
        "pearson [95% CI]": [ci(*r) for r in zip(order.pearson, order.pearson_lo, order.pearson_hi)],
        "spearman [95% CI]": [ci(*r) for r in zip(order.spearman, order.spearman_lo, order.spearman_hi)],
        "flag": ["⚑ |r| > 0.3" if f else "" for f in order.flagged],
    })


def correlations(app: App, tab: CorrelationsTab, source: str, max_rows: float, feature: str, models: list[str],
                 file: str | None, sess: Session, progress=gr.Progress()) -> dict:
    from analysis.correlations import analyze, plot_scatter

    require_researcher(sess)
    with shown("Correlations failed"):
        rows = subsample(from_source(RESPONSE_SOURCES, source, app.store, file), max_rows)
        scorer = cached_scorer(model_sources(models, app.runs))
        progress(0.2, desc=f"Scoring {len(rows)} responses")
        report = analyze(scorer, rows.prompt.tolist(), rows.response.tolist())
    note = " · ".join(report.callouts) or "no length hacking (length r ≤ 0.5)"
    return {tab.summary: f"**{report.n} responses** scored by {code_span(scorer.name)} · {note}",
            tab.table: correlation_table(report.table), tab.report: report,
            tab.plot: plot_scatter(report, [feature], ncols=1)}


def replot(app: App, tab: CorrelationsTab, report, feature: str, sess: Session) -> dict:
    from analysis.correlations import plot_scatter

    require_researcher(sess)
    return {tab.plot: plot_scatter(report, [feature], ncols=1) if report else gr.skip()}


def wire(app: App, tab: CorrelationsTab, selector: Selector, session: gr.State) -> None:
    tab.run.click(bind(correlations, app, tab), [tab.source, tab.max_rows, tab.feature, selector.models, tab.file,
                                                 session],
                  [tab.summary, tab.table, tab.report, tab.plot], api_name="correlations", **HEAVY_CONCURRENCY)
    tab.feature.input(bind(replot, app, tab), [tab.report, tab.feature, session], tab.plot, **UI_ONLY)
