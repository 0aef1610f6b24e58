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
from ui.render import code_span, markdown_literal


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
    invite_name: gr.Textbox
    invite: gr.Button
    revoke: gr.Button
    invite_note: gr.Markdown
    invites: gr.Dataframe
    style_rm: gr.Dropdown
    style_run: gr.Button
    style_plot: gr.Plot
    style_table: gr.Dataframe


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
    with gr.Accordion(f"Invites (sign-in mode: {app.access.signin})", open=app.access.signin == "invite"):
        with gr.Row(equal_height=True):
            invite_name = gr.Textbox(label="Annotator name", max_lines=1, scale=3, elem_id="rm-invite-name")
            invite = gr.Button("Invite (a new code replaces the old one)", scale=1, elem_id="rm-invite-create")
            revoke = gr.Button("Revoke", variant="stop", scale=0, min_width=100, elem_id="rm-invite-revoke")
        invite_note = gr.Markdown(elem_id="rm-invite-note")
        invites = gr.Dataframe(interactive=False, label="Invites", elem_id="rm-invites")
    style = build_style(app)
    return DashboardTab(refresh, summary, per_annotator, per_kind, labels_plot, bias_plot, aggregate,
                        export_format, export, export_file, invite_name, invite, revoke, invite_note, invites, *style)


def build_style(app: App) -> tuple:
    from rm.checkpoint import list_checkpoints

    with gr.Accordion("Where the bias comes from: style-controlled Bradley-Terry", open=False):
        gr.Markdown("Each collected preference is regressed on the two responses' differences in length, formatting, "
                    "agreement with the user's claim and hedging (LMArena's style control): which styles do the "
                    "annotators reward, with the others held fixed? Add a reward model to fit its choices between the "
                    "same pairs: *the annotators are sycophantic* and *the RM learned it* look different here.")
        with gr.Row(equal_height=True):
            rm = gr.Dropdown(list_checkpoints(app.runs), value=None, allow_custom_value=True, scale=3,
                             label="Also fit a reward model's choices (optional)")
            run = gr.Button("Fit", scale=1, elem_id="rm-style-run")
        plot = gr.Plot(show_label=False, elem_id="rm-style-plot")
        table = gr.Dataframe(interactive=False, label="Log-odds of preferring A per SD of the style difference",
                             elem_id="rm-style-table")
    return rm, run, plot, table


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
            tab.invites: invite_table(app),
            tab.per_kind: dashboard.kind_table(labels), tab.labels_plot: dashboard.plot_label_counts(labels),
            tab.bias_plot: dashboard.plot_biases(labels)}


def export_dataset(app: App, aggregate: str, fmt: str, sess: Session) -> str:
    """Export the labels as a preference dataset file (researchers only)."""
    require_researcher(sess)
    with shown("The export failed"):
        config = ExportConfig(out=tempfile.mkdtemp(prefix="rmlab-export-"), format=fmt, aggregate=aggregate)
        return str(export_zip(app.store, config))


def page_url(request: gr.Request | None) -> str:
    """The app's address as the browser sees it (the Origin header), else as the server does."""
    if request is None:
        return "/"
    origin = request.headers.get("origin")
    return f"{origin.rstrip('/')}/" if origin else str(request.base_url)


def invite_table(app: App) -> pd.DataFrame:
    rows = [{"name": i.name, "active": i.active, "created": i.created_at, "revoked": i.revoked_at or "",
             "labels": i.labels} for i in app.store.list_invites()]
    return pd.DataFrame(rows, columns=["name", "active", "created", "revoked", "labels"])


def create_invite(app: App, tab: DashboardTab, name: str, sess: Session, request: gr.Request) -> dict:
    """Issue (or replace) an annotator's invite; its code is shown once, here."""
    require_researcher(sess)
    with shown("No invite was made"):
        token = app.store.create_invite(name)
    link = f"{page_url(request)}?invite={token}"
    note = (f"Invite for **{markdown_literal(name.strip())}**, shown only now (it is stored as a hash): "
            f"send this link {code_span(link)} or the code {code_span(token)}.")
    return {tab.invite_note: note, tab.invites: invite_table(app), tab.invite_name: ""}


def revoke_invite(app: App, tab: DashboardTab, name: str, sess: Session) -> dict:
    require_researcher(sess)
    with shown("Nothing was revoked"):
        app.store.revoke_invite(name)
    return {tab.invite_note: f"Revoked **{markdown_literal(name.strip())}**'s invite; their labels stay.",
            tab.invites: invite_table(app)}


def style_control(app: App, tab: DashboardTab, rm: str | None, sess: Session) -> dict:
    """Style-controlled Bradley-Terry on the collected labels (and on an RM's choices between them)."""
    from analysis.sources import label_pairs
    from analysis.style import plot_style, style_report
    from ui.models import cached_scorer, model_sources

    require_researcher(sess)
    with shown("The style fit failed"):
        scorer = cached_scorer(model_sources(rm, app.runs)) if rm else None
        report = style_report(label_pairs(app.store), scorer)
    return {tab.style_plot: plot_style(report), tab.style_table: report.table().round(3)}


def wire(app: App, tab: DashboardTab, session: gr.State, dash_tab: gr.Tab) -> None:
    outputs = [tab.summary, tab.per_annotator, tab.per_kind, tab.labels_plot, tab.bias_plot, tab.invites]
    gr.on([tab.refresh.click, dash_tab.select], bind(refresh, app, tab), session, outputs, api_name="dashboard")
    tab.export.click(bind(export_dataset, app), [tab.aggregate, tab.export_format, session], tab.export_file,
                     api_name="export_dataset")
    invites = [tab.invite_note, tab.invites, tab.invite_name]
    tab.invite.click(bind(create_invite, app, tab), [tab.invite_name, session], invites, api_name="create_invite")
    tab.revoke.click(bind(revoke_invite, app, tab), [tab.invite_name, session], invites, api_name="revoke_invite")
    tab.style_run.click(bind(style_control, app, tab), [tab.style_rm, session], [tab.style_plot, tab.style_table],
                        api_name="style_control")
