"""The Audits tab: the sycophancy audit (does the RM prefer agreeing with a false claim?),
counterfactual style probes, and the reliability diagram before and after temperature scaling."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from analysis.sources import CASE_SOURCES, PAIR_SOURCES, RESPONSE_SOURCES, from_source, subsample
from ui.auth import Session, require_researcher
from ui.context import FILE_TYPES, HEAVY_CONCURRENCY, App, bind
from ui.errors import shown
from ui.models import Selector, cached_scorer, model_sources


@dataclass
class AuditsTab:
    case_source: gr.Radio
    case_n: gr.Number
    threshold: gr.Slider
    audit_run: gr.Button
    case_file: gr.File
    audit_summary: gr.Markdown
    audit_plot: gr.Plot
    audit_cases: gr.Dataframe
    cf_source: gr.Radio
    cf_max: gr.Number
    cf_run: gr.Button
    rel_source: gr.Radio
    rel_run: gr.Button
    file: gr.File  # uploads for the counterfactual probes and the reliability diagram
    cf_plot: gr.Plot
    rel_plot: gr.Plot
    cf_table: gr.Dataframe


def build(app: App) -> AuditsTab:
    with gr.Row(equal_height=True):
        case_source = gr.Radio(list(CASE_SOURCES), value="agreement tasks (seed)", label="Cases", scale=3)
        case_n = gr.Number(60, label="Generated cases", precision=0, minimum=1, maximum=500, scale=1)
        threshold = gr.Slider(0, 1, 0.5, step=0.05, label="Flag above", scale=1)
        audit_run = gr.Button("Run sycophancy audit", variant="primary", scale=1, elem_id="rm-audit-run")
    with gr.Accordion("Upload cases (for 'uploaded file')", open=False):
        case_file = gr.File(label="cases (prompt, agreeing, correcting) or agreement tasks", file_types=FILE_TYPES)
    audit_summary = gr.Markdown(elem_id="rm-audit-summary")
    with gr.Row():
        audit_plot = gr.Plot(show_label=False, elem_id="rm-audit-plot")
        audit_cases = gr.Dataframe(interactive=False, label="Rewards per case (gap = agreeing − correcting)",
                                   elem_id="rm-audit-cases", max_height=360)
    gr.Markdown("#### Counterfactual probes and calibration")
    with gr.Row(equal_height=True):
        cf_source = gr.Radio(list(RESPONSE_SOURCES), value="seed tasks", label="Responses to perturb", scale=3)
        cf_max = gr.Number(60, label="Max responses", precision=0, minimum=2, scale=1)
        cf_run = gr.Button("Run counterfactual probes", scale=1, elem_id="rm-cf-run")
    with gr.Row(equal_height=True):
        rel_source = gr.Radio(list(PAIR_SOURCES), value="known preferences (gold, agreement)",
                              label="Pairs for the reliability diagram", scale=4)
        rel_run = gr.Button("Reliability diagram", scale=1, elem_id="rm-rel-run")
    with gr.Accordion("Upload a file (for 'uploaded file' in these two)", open=False):
        file = gr.File(label="responses or preference pairs", file_types=FILE_TYPES)
    with gr.Row():
        cf_plot = gr.Plot(show_label=False, elem_id="rm-cf-plot", scale=3)
        rel_plot = gr.Plot(show_label=False, elem_id="rm-rel-plot", scale=2)
    cf_table = gr.Dataframe(interactive=False, label="Reward deltas per perturbation", max_height=300)
    return AuditsTab(case_source, case_n, threshold, audit_run, case_file, audit_summary, audit_plot, audit_cases,
                     cf_source, cf_max, cf_run, rel_source, rel_run, file, cf_plot, rel_plot, cf_table)


def rounded(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    return frame.round({c: digits for c in frame.columns if pd.api.types.is_float_dtype(frame[c])})


def audit_summary(report) -> str:
    lo, hi = report.rate_ci
    verdict = "**FLAGGED**: prefers agreeing with false claims" if report.flagged else "not flagged"
    return (f"**{report.n} cases** · the RM preferred the agreeing response in **{100 * report.agree_preferred_rate:.0f}%**"
            f" (95% CI {100 * lo:.0f}–{100 * hi:.0f}%) · mean gap {report.mean_gap:+.3f} · "
            f"mean P(agreeing wins) {report.mean_p_agree:.2f} · threshold {report.threshold:.2f} → {verdict}")


def sycophancy(app: App, tab: AuditsTab, source: str, n: float, threshold: float, models: list[str],
               file: str | None, sess: Session) -> dict:
    from analysis.sycophancy import audit, plot_rates

    require_researcher(sess)
    with shown("The audit failed"):
        cases = from_source(CASE_SOURCES, source, app.store, file, n)
        report = audit(cached_scorer(model_sources(models, app.runs)), cases, threshold)
    table = report.cases[["id", "score_agreeing", "score_correcting", "gap", "p_agree"]].rename(
        columns={"score_agreeing": "agreeing", "score_correcting": "correcting", "p_agree": "P(agree wins)"})
    return {tab.audit_summary: audit_summary(report), tab.audit_plot: plot_rates(report),
            tab.audit_cases: rounded(table.sort_values("gap", ascending=False))}


def counterfactual(app: App, tab: AuditsTab, source: str, max_rows: float, models: list[str], file: str | None,
                   sess: Session) -> dict:
    from analysis.counterfactual import plot_deltas, probe

    require_researcher(sess)
    with shown("The counterfactual probes failed"):
        rows = subsample(from_source(RESPONSE_SOURCES, source, app.store, file), max_rows)
        report = probe(cached_scorer(model_sources(models, app.runs)), rows.prompt.tolist(), rows.response.tolist())
    table = report.summary[["perturbation", "n", "mean_delta", "ci_lo", "ci_hi", "win_rate", "p_win"]]
    return {tab.cf_plot: plot_deltas(report), tab.cf_table: rounded(table)}


def reliability(app: App, tab: AuditsTab, source: str, models: list[str], file: str | None, sess: Session) -> dict:
    from analysis.calibration import pair_calibration, plot_reliability

    require_researcher(sess)
    with shown("The reliability diagram failed"):
        pairs = from_source(PAIR_SOURCES, source, app.store, file)
        scorer = cached_scorer(model_sources(models, app.runs))
        result = pair_calibration(scorer, pairs, "checkpoint")
    title = f"{scorer.name}: {result.n_eval} pairs, accuracy {result.metrics_after['accuracy']:.2f}"
    return {tab.rel_plot: plot_reliability(result, title)}


def wire(app: App, tab: AuditsTab, selector: Selector, session: gr.State) -> None:
    models = selector.models
    tab.audit_run.click(bind(sycophancy, app, tab), [tab.case_source, tab.case_n, tab.threshold, models, tab.case_file,
                                                     session],
                        [tab.audit_summary, tab.audit_plot, tab.audit_cases], api_name="sycophancy_audit",
                        **HEAVY_CONCURRENCY)
    tab.cf_run.click(bind(counterfactual, app, tab), [tab.cf_source, tab.cf_max, models, tab.file, session],
                     [tab.cf_plot, tab.cf_table], api_name="counterfactual", **HEAVY_CONCURRENCY)
    tab.rel_run.click(bind(reliability, app, tab), [tab.rel_source, models, tab.file, session], tab.rel_plot,
                      api_name="reliability", **HEAVY_CONCURRENCY)
