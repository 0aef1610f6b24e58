"""Reward-model lab web app: annotators label response pairs, researchers watch and export.

    python app.py [--host 127.0.0.1] [--port 7860] [--db URL_OR_PATH] [--share]

Tabs: Label (everyone), Dashboard and Research (researchers). `build_ui(store)` lays the
components out, then wires them in a listeners section; `main()` only parses arguments.

Scripted labeling goes through two named endpoints that share the buttons' code path:

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    task = client.predict("alice", api_name="/next_task")
    while task["assignment_id"]:
        client.predict("alice", task["assignment_id"], "A", "clearly", "", ["hedges"],
                       api_name="/submit_label")
        task = client.predict("alice", api_name="/next_task")

Roles. With neither `RMLAB_RESEARCHERS` nor `RMLAB_ADMIN_TOKEN` set (a local run) everyone
is a researcher. Otherwise a session is a researcher when its *verified* identity (the Hugging
Face OAuth username on Spaces, or the `auth=` login) is listed in `RMLAB_RESEARCHERS`, or when
it signed in with the token `RMLAB_ADMIN_TOKEN`. A typed name never grants a role: anyone can
type any name. Every researcher handler checks the session's role itself, because each Gradio
event is also a public HTTP endpoint.
"""
from __future__ import annotations

import argparse
import hmac
import html
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import nh3
import numpy as np
import pandas as pd
from markdown_it import MarkdownIt
from matplotlib.figure import Figure

from labeling import stats
from labeling.export import AGGREGATORS, WRITERS, ExportConfig, export
from labeling.store import Store, open_store

# ----------------------------------------------------------------------------- vocabulary

# UI/API choice -> the store's choice (A is the response shown on the left).
CHOICES = {"A": "left", "B": "right", "tie": "tie", "both_bad": "both_bad"}
CHOICE_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}
# Strength word -> the store's 1..3 (exported as the margin).
STRENGTHS = {"slightly": 1, "clearly": 2, "much": 3}
DEFAULT_STRENGTH = "clearly"
TAGS = ["agrees with a false claim", "too long", "hedges", "factually wrong", "unsafe",
        "off-topic"]
# Key -> element id of the button it clicks; the button captions and the page script read this.
SHORTCUTS = {
    "1": "rm-choice-A", "a": "rm-choice-A",
    "2": "rm-choice-B", "b": "rm-choice-B",
    "3": "rm-choice-tie", "t": "rm-choice-tie",
    "4": "rm-choice-both_bad", "x": "rm-choice-both_bad",
    "s": "rm-skip", "u": "rm-undo",
}

GUIDELINES = """\
**Your job:** read the prompt, read both responses, and say which one a careful expert would
rather send to the person who asked.

- **Correctness first.** A confident wrong answer is worse than a short correct one. If the
  prompt asserts something false, the better response says so politely; agreeing with a
  false claim is a serious flaw (tag it *agrees with a false claim*).
- **Then helpfulness:** does it answer what was asked, at a sensible length, without padding?
- **Judge the content, not the position.** Left/right order is random.
- **Tie** when they are equally good; **Both bad** when neither is acceptable.
- **Strength:** *slightly*, *clearly* or *much* better. Pick it before you choose.
- Rationale and tags are optional but help researchers. **Skip** if you cannot judge a task.

Keyboard: **1**/**A** A better · **2**/**B** B better · **3**/**T** tie · **4**/**X** both bad ·
**S** skip · **U** undo last. Keys do nothing while you type in the rationale box.
"""

# ----------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class Access:
    """Who may use the researcher handlers (dashboard, export, research tab)."""

    researchers: frozenset[str] = field(default_factory=frozenset, metadata={
        "help": "verified user names with the researcher role (env RMLAB_RESEARCHERS, comma-separated)"})
    admin_token: str | None = field(default=None, metadata={
        "help": "a shared secret that grants the researcher role at sign-in (env RMLAB_ADMIN_TOKEN)"})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Access:
        env = os.environ if env is None else env
        names = frozenset(n.strip() for n in env.get("RMLAB_RESEARCHERS", "").split(",") if n.strip())
        return cls(researchers=names, admin_token=env.get("RMLAB_ADMIN_TOKEN") or None)

    @property
    def open(self) -> bool:
        """No role configured: a local run where everyone is a researcher."""
        return not self.researchers and not self.admin_token

    def grants(self, verified_user: str | None, token: str | None) -> bool:
        if self.open:
            return True
        if verified_user is not None and verified_user in self.researchers:
            return True
        # compare_digest: no timing side channel on the secret
        return bool(self.admin_token and token) and hmac.compare_digest(
            self.admin_token.encode(), token.encode())


def oauth_available() -> bool:
    """Hugging Face OAuth works only inside a Space with `hf_oauth: true`; elsewhere gradio
    would mock it with the local HF token (a Hub call), so we leave the login button out."""
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))


def verified_user(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    """The identity a server vouches for: the OAuth username, or the `auth=` login."""
    if profile is not None:
        return profile.username
    return getattr(request, "username", None) or None


def annotator_name(typed: str | None, verified: str | None) -> str:
    """The verified identity wins over a typed name; raises when neither is usable."""
    name = verified or (typed or "").strip()
    if not name:
        raise gr.Error("Enter your name (or sign in with Hugging Face) to start labeling.")
    if len(name) > 64:
        raise gr.Error("Names are at most 64 characters; please use a shorter one.")
    return name


# ----------------------------------------------------------------------------- rendering

# Untrusted model text: raw HTML is shown as text (html=False), then the rendered HTML is
# cleaned again with an allow-list (no images: they would load remote URLs).
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_ALLOWED_TAGS = {"p", "br", "hr", "pre", "code", "em", "strong", "del", "s", "blockquote",
                 "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead",
                 "tbody", "tr", "th", "td"}


def render_markdown(text: str) -> str:
    """Markdown of untrusted text -> safe HTML in a scrollable box."""
    body = nh3.clean(_MD.render(text), tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return f'<div class="rm-text">{body}</div>'


def markdown_literal(text: str) -> str:
    """Untrusted text (a typed name) inside our own Markdown: no markup, no HTML."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~$])", r"\\\1", html.escape(text, quote=False))


def plot_literal(text: str) -> str:
    """Untrusted text as a matplotlib label: `$` would start mathtext (and can fail to parse)."""
    return text.replace("$", r"\$")


def progress_line(annotator: str, progress: dict) -> str:
    return (f"Signed in as **{markdown_literal(annotator)}** · **{progress['done']}** labelled"
            f" · **{progress['remaining']}** to go")


# ----------------------------------------------------------------------------- labeling core
# The UI handlers and the named API endpoints both call these two, so a script labels
# exactly as the buttons do. Time on task is the store's: serve (or re-serve) to submit.


def serve_task(store: Store, annotator: str) -> dict:
    """The annotator's next assignment as a JSON-able dict (see `next_task`)."""
    assignment = store.next_assignment(annotator)
    view = {"assignment_id": None, "prompt": "", "response_a": "", "response_b": "",
            "progress": _progress(store, annotator)}
    if assignment is not None:
        view.update(assignment_id=assignment.id, prompt=assignment.prompt,
                    response_a=assignment.left, response_b=assignment.right)
    return view


def record_label(store: Store, annotator: str, assignment_id: int, choice: str,
                 strength: str = DEFAULT_STRENGTH, rationale: str = "",
                 tags: list[str] | None = None) -> dict:
    """Store one label durably; idempotent per assignment (see `submit_label`)."""
    if choice not in CHOICES:
        raise gr.Error(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}.")
    if strength not in STRENGTHS:
        raise gr.Error(f"strength must be one of {', '.join(STRENGTHS)}, got {strength!r}.")
    unknown = sorted(set(tags or []) - set(TAGS))
    if unknown:
        raise gr.Error(f"unknown tag {unknown[0]!r}; tags are: {', '.join(TAGS)}.")
    with store_errors("The label was not stored"):
        label = store.submit(int(assignment_id), annotator, CHOICES[choice], STRENGTHS[strength],
                             rationale=(rationale or "").strip(), tags=list(tags or []))
    return {"assignment_id": label.assignment_id, "label_id": label.id,
            "progress": _progress(store, annotator)}


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """The store's refusals (unknown id, someone else's task, bad value) -> a message to the user."""
    try:
        yield
    except (LookupError, ValueError, PermissionError) as err:
        raise gr.Error(f"{what}: {err}.") from err


def _progress(store: Store, annotator: str) -> dict:
    progress = store.progress(annotator)
    return {k: progress[k] for k in ("done", "skipped", "remaining")}


# ----------------------------------------------------------------------------- session


@dataclass(frozen=True)
class Session:
    """Per-browser-tab state. It lives in gr.State on the server; clients cannot set it."""

    annotator: str | None = None
    researcher: bool = False
    assignment_id: int | None = None  # the task on screen, None while none is open


def require_annotator(session: Session) -> str:
    if session.annotator is None:
        raise gr.Error("Sign in first: enter your name and press Start labeling.")
    return session.annotator


def require_researcher(session: Session) -> None:
    """Every researcher handler calls this first: the role lives in server-side state."""
    if not session.researcher:
        raise gr.Error("This needs the researcher role: sign in with the researcher token, or "
                       "with a Hugging Face account listed in RMLAB_RESEARCHERS.")


# ----------------------------------------------------------------------------- layout

CSS = """
.rm-title { font-weight: 600; margin: 0 0 4px 2px; }
.rm-text { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 2px 14px;
           max-height: 55vh; overflow: auto; background: var(--background-fill-primary); }
.rm-prompt .rm-text { background: var(--background-fill-secondary); }
.rm-text pre { background: var(--background-fill-secondary); padding: 8px; border-radius: 6px;
               white-space: pre-wrap; }
.rm-text code { font-family: var(--font-mono); font-size: 0.92em; }
.rm-text :not(pre) > code { background: var(--background-fill-secondary); padding: 0 3px;
                            border-radius: 4px; }
#rm-choices button { min-height: 46px; font-size: 1.05rem; }
#rm-status { padding-top: 6px; }
"""

_SHORTCUT_SCRIPT = """
<script>
(() => {
  const keys = %s;  // key -> element id of the button it clicks
  const typing = (el) => el && (el.isContentEditable || ["TEXTAREA", "SELECT"].includes(el.tagName)
      || (el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type)));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typing(e.target)) return;
    const el = document.getElementById(keys[e.key.toLowerCase()]);
    const button = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (!button || button.disabled || button.offsetParent === null) return;  // hidden or busy
    e.preventDefault();
    button.click();
  });
})();
</script>
"""


def page_head() -> str:
    """<head> script for the keyboard shortcuts; keys are ignored while typing in a text box."""
    return _SHORTCUT_SCRIPT % json.dumps(SHORTCUTS)


def text_panel(title: str, text: str, css_class: str = "") -> str:
    return f'<div class="{css_class}"><div class="rm-title">{title}</div>{render_markdown(text)}</div>'


def build_label_tab(access: Access) -> SimpleNamespace:
    """Sign-in, guidelines and the task card; returns the components for the listeners."""
    ui = SimpleNamespace()
    with gr.Row(equal_height=True) as ui.signin_row:  # hidden once signed in; reload to switch
        ui.name = gr.Textbox(label="Your name", placeholder="e.g. alice", max_lines=1, scale=3,
                             elem_id="rm-name")
        ui.token = gr.Textbox(label="Researcher token (optional)", type="password", max_lines=1,
                              scale=2, visible=access.admin_token is not None, elem_id="rm-token")
        with gr.Column(scale=1, min_width=160):
            ui.signin = gr.Button("Start labeling", variant="primary", elem_id="rm-signin")
            ui.login = gr.LoginButton(size="md") if oauth_available() else None
    ui.status = gr.Markdown("Enter your name to start.", elem_id="rm-status")
    with gr.Accordion("Guidelines", open=True) as ui.guidelines:
        gr.Markdown(GUIDELINES)
    with gr.Column(visible=False) as ui.card:
        ui.prompt = gr.HTML(elem_id="rm-prompt", js_on_load=None)
        with gr.Row():
            ui.left = gr.HTML(elem_id="rm-left", js_on_load=None)
            ui.right = gr.HTML(elem_id="rm-right", js_on_load=None)
        with gr.Row():
            ui.strength = gr.Radio(list(STRENGTHS), value=DEFAULT_STRENGTH, label="How much better?",
                                   scale=3, min_width=300, elem_id="rm-strength")
            ui.tags = gr.CheckboxGroup(TAGS, label="Tags (optional)", scale=5, elem_id="rm-tags")
        ui.rationale = gr.Textbox(label="Rationale (optional)", lines=1, max_lines=4,
                                  placeholder="Why? One line is plenty.", elem_id="rm-rationale")
        digit = {button: key for key, button in SHORTCUTS.items() if key.isdigit()}
        with gr.Row(elem_id="rm-choices"):
            ui.choices = {c: gr.Button(f"{text}  [{digit['rm-choice-' + c]}]",
                                       variant="primary" if c in ("A", "B") else "secondary",
                                       elem_id=f"rm-choice-{c}")
                          for c, text in CHOICE_LABELS.items()}
        with gr.Row():
            ui.skip = gr.Button("Skip  [S]", size="sm", elem_id="rm-skip")
            ui.undo = gr.Button("Undo last  [U]", size="sm", elem_id="rm-undo")
    ui.finished = gr.Markdown(visible=False, elem_id="rm-finished")
    return ui


def build_dashboard_tab() -> SimpleNamespace:
    """Label statistics and the dataset export; returns the components for the listeners."""
    ui = SimpleNamespace()
    with gr.Row(equal_height=True):
        ui.refresh = gr.Button("Refresh", variant="primary", scale=0, min_width=120,
                               elem_id="rm-refresh")
        ui.summary = gr.Markdown(elem_id="rm-summary")
    ui.per_annotator = gr.Dataframe(label="Per annotator (95% confidence intervals in brackets)",
                                    interactive=False, elem_id="rm-per-annotator")
    ui.per_kind = gr.Dataframe(label="Per task kind", interactive=False, elem_id="rm-per-kind")
    with gr.Row():
        ui.labels_plot = gr.Plot(show_label=False, elem_id="rm-labels-plot")
        ui.bias_plot = gr.Plot(show_label=False, elem_id="rm-bias-plot")
    with gr.Accordion("Export the dataset", open=False):
        with gr.Row(equal_height=True):
            ui.aggregate = gr.Radio(list(AGGREGATORS), value="none", label="Aggregate labels")
            ui.export_format = gr.Radio(list(WRITERS), value="jsonl", label="Format")
            ui.export = gr.Button("Export", elem_id="rm-export")
        ui.export_file = gr.File(label="Dataset", interactive=False, elem_id="rm-export-file")
    return ui


def build_research_tab(store: Store, access: Access, session: gr.State) -> SimpleNamespace:
    """The researcher playground (issue 5): phase 2 lays it out and wires it here, calling
    `require_researcher(session)` first in every handler."""
    ui = SimpleNamespace()
    gr.Markdown("The research playground (probe, audits, training) arrives here in phase 2.")
    return ui


# ----------------------------------------------------------------------------- the app


def build_ui(store: Store, access: Access | None = None, title: str = "Reward-model lab") -> gr.Blocks:
    """The whole app on `store`; `access` defaults to the roles set in the environment."""
    access = Access.from_env() if access is None else access
    with gr.Blocks(title=title) as demo:
        session = gr.State(Session())
        gr.Markdown(f"## {title}")
        with gr.Tabs():
            with gr.Tab("Label", id="label"):
                label = build_label_tab(access)
            with gr.Tab("Dashboard", id="dashboard", visible=access.open) as dash_tab:
                dash = build_dashboard_tab()
            with gr.Tab("Research", id="research", visible=access.open) as research_tab:
                build_research_tab(store, access, session)

        # ------------------------------------------------------------------ listeners
        card = [session, label.status, label.card, label.finished, label.prompt, label.left,
                label.right, label.strength, label.tags, label.rationale]

        def sign_in(name: str, token: str, sess: Session, request: gr.Request,
                    profile: gr.OAuthProfile | None) -> dict:
            """Start a session: name (a signed-in Hugging Face user's own name wins) and an optional researcher token."""
            verified = verified_user(request, profile)
            researcher = access.grants(verified, token)
            return {session: Session(annotator=annotator_name(name, verified), researcher=researcher),
                    label.signin_row: gr.Row(visible=False), label.guidelines: gr.Accordion(open=False),
                    dash_tab: gr.Tab(visible=researcher), research_tab: gr.Tab(visible=researcher)}

        def show_next(sess: Session) -> dict:
            task = serve_task(store, require_annotator(sess))
            return task_card(replace(sess, assignment_id=task["assignment_id"]), task)

        def task_card(sess: Session, task: dict) -> dict:
            shown = task["assignment_id"] is not None
            return {session: sess, label.status: progress_line(sess.annotator, task["progress"]),
                    label.card: gr.Column(visible=shown),
                    label.finished: gr.Markdown(finished_note(task["progress"]), visible=not shown),
                    label.prompt: text_panel("Prompt", task["prompt"], "rm-prompt"),
                    label.left: text_panel("Response A", task["response_a"]),
                    label.right: text_panel("Response B", task["response_b"]),
                    label.strength: DEFAULT_STRENGTH, label.tags: [], label.rationale: ""}

        def submit(choice: str, sess: Session, strength: str, rationale: str, tags: list[str]) -> dict:
            if sess.assignment_id is None:  # a key pressed again while the next task loads
                return {session: gr.skip()}
            record_label(store, require_annotator(sess), sess.assignment_id, choice, strength,
                         rationale, tags)
            return {session: replace(sess, assignment_id=None)}

        def skip(sess: Session) -> dict:
            if sess.assignment_id is not None:
                with store_errors("The task was not skipped"):
                    store.skip(sess.assignment_id, require_annotator(sess))
            return {session: replace(sess, assignment_id=None)}

        def undo(sess: Session) -> dict:
            with store_errors("Nothing was undone"):
                undone = store.undo_last(require_annotator(sess))
            if undone is None:
                raise gr.Error("Nothing to undo yet.")
            return {session: replace(sess, assignment_id=None)}

        def dashboard(sess: Session) -> dict:
            """Label statistics (researchers only)."""
            require_researcher(sess)
            return dashboard_view(store, dash)

        def export_dataset(aggregate: str, fmt: str, sess: Session) -> str:
            """Export the labels as a preference dataset file (researchers only)."""
            require_researcher(sess)
            return export_zip(store, aggregate, fmt)

        ui_only = {"api_visibility": "private"}
        gr.on([label.signin.click, label.name.submit, label.token.submit], sign_in,
              [label.name, label.token, session],
              [session, label.signin_row, label.guidelines, dash_tab, research_tab],
              api_name="sign_in").success(show_next, session, card, **ui_only)
        for choice, button in label.choices.items():
            button.click(partial(submit, choice), [session, label.strength, label.rationale, label.tags],
                         session, **ui_only).success(show_next, session, card, **ui_only)
        label.skip.click(skip, session, session, **ui_only).success(show_next, session, card, **ui_only)
        label.undo.click(undo, session, session, **ui_only).success(show_next, session, card, **ui_only)
        dash_outputs = [dash.summary, dash.per_annotator, dash.per_kind, dash.labels_plot, dash.bias_plot]
        gr.on([dash.refresh.click, dash_tab.select], dashboard, session, dash_outputs, api_name="dashboard")
        dash.export.click(export_dataset, [dash.aggregate, dash.export_format, session], dash.export_file,
                          api_name="export_dataset")

        def next_task(annotator: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
            """Serve the annotator's next task; an open (served, unlabelled) task is served again.

            Parameters:
                annotator: the annotator's name (a signed-in Hugging Face user's own name wins)
            Returns:
                {"assignment_id": int or None when nothing is left, "prompt": str,
                 "response_a": str, "response_b": str (as shown: A left, B right),
                 "progress": {"done": int, "skipped": int, "remaining": int}}
            """
            return serve_task(store, annotator_name(annotator, verified_user(request, profile)))

        def submit_label(annotator: str, assignment_id: int, choice: str, strength: str = DEFAULT_STRENGTH,
                         rationale: str = "", tags: list[str] | None = None,
                         request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> dict:
            """Label an assignment from next_task; durable on return, and a repeat stores nothing new.

            Parameters:
                annotator: the annotator's name, as given to next_task
                assignment_id: the assignment_id from next_task
                choice: "A", "B", "tie" or "both_bad" (A = response_a)
                strength: "slightly", "clearly" or "much" better (default "clearly")
                rationale: optional free text
                tags: optional, any of "agrees with a false claim", "too long", "hedges", "factually wrong", "unsafe", "off-topic"
            Returns:
                {"assignment_id": int, "label_id": int (the same for a repeated submit),
                 "progress": {"done": int, "skipped": int, "remaining": int}}
            """
            who = annotator_name(annotator, verified_user(request, profile))
            return record_label(store, who, assignment_id, choice, strength, rationale, tags)

        gr.api(next_task, api_name="next_task")
        gr.api(submit_label, api_name="submit_label")
    return demo


def finished_note(progress: dict) -> str:
    if progress["remaining"]:  # e.g. only the other pairing of the triad just shown is left
        return ("### Nothing to show right now\nYour remaining tasks cannot be served back to "
                "back; press Start labeling again in a little while.")
    return "### All done, thank you!\nNo tasks are left for you right now."


# ----------------------------------------------------------------------------- dashboard views


def dashboard_view(store: Store, dash: SimpleNamespace) -> dict:
    """Every dashboard component's value from the store's labels."""
    labels = store.labels()
    return {dash.summary: summary_text(labels), dash.per_annotator: annotator_table(labels),
            dash.per_kind: kind_table(labels), dash.labels_plot: plot_label_counts(labels),
            dash.bias_plot: plot_biases(labels)}


def _pct(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * x:.0f}%"


def _with_ci(x: float, low: float, high: float) -> str:
    return "–" if pd.isna(x) else f"{_pct(x)} ({100 * low:.0f}–{100 * high:.0f})"


def summary_text(labels: pd.DataFrame) -> str:
    if labels.empty:
        return "**No labels yet.** Label a few tasks, then press Refresh."
    alpha = stats.alpha_by_kind(labels)["all"]
    overall = lambda table: table.iloc[-1]  # noqa: E731 (the OVERALL row comes last)
    bias, agree = overall(stats.position_bias(labels)), overall(stats.agreement_bias(labels))
    gold, triads = overall(stats.gold_accuracy(labels)), overall(stats.triad_cycles(labels))
    n, people = len(labels), labels.annotator.nunique()
    return (f"**{n} label{'s' * (n != 1)}** from **{people} annotator{'s' * (people != 1)}** · "
            f"Krippendorff's α **{'–' if pd.isna(alpha) else f'{alpha:.2f}'}** · "
            f"gold accuracy **{_pct(gold.accuracy)}** · "
            f"left picks **{_with_ci(bias.share_left, bias.ci_low, bias.ci_high)}** · "
            f"agreeing response won **{_with_ci(agree.rate, agree.ci_low, agree.ci_high)}** · "
            f"triads **{int(triads.completed_triads)}** complete, **{int(triads.cycles)}** cycles")


def annotator_table(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per annotator (and the overall row): volume, quality and the biases with 95% CIs."""
    keys = ["annotator"]
    volume = stats.labels_per_annotator(labels)
    gold = stats.gold_accuracy(labels)
    bias = stats.position_bias(labels).rename(columns={"ci_low": "left_low", "ci_high": "left_high"})
    agree = stats.agreement_bias(labels).rename(columns={"ci_low": "agree_low", "ci_high": "agree_high"})
    triads = stats.triad_cycles(labels)
    table = (volume.merge(gold, on=keys, how="left").merge(bias, on=keys, how="left")
             .merge(agree, on=keys, how="left").merge(triads, on=keys, how="left"))
    return pd.DataFrame({
        "annotator": table.annotator,
        "labels": table["labels"],
        "tie/both bad": [f"{t} / {b}" for t, b in zip(table.ties, table.both_bad)],
        "median s": table.median_seconds.round(1),
        "gold right": [f"{_pct(a)} of {int(n)}" if n else "–"
                       for a, n in zip(table.accuracy, table.gold_labels.fillna(0))],
        "left picks": [_with_ci(*r) for r in zip(table.share_left, table.left_low, table.left_high)],
        "agreeing won": [_with_ci(*r) for r in zip(table.rate, table.agree_low, table.agree_high)],
        "triads/cycles": [f"{int(c)} / {int(k)}" for c, k in
                            zip(table.completed_triads.fillna(0), table.cycles.fillna(0))],
    })


def kind_table(labels: pd.DataFrame) -> pd.DataFrame:
    alpha = stats.alpha_by_kind(labels)
    table = stats.labels_per_kind(labels)
    table["Krippendorff α"] = [None if pd.isna(a) else round(a, 3) for a in table.task_kind.map(alpha)]
    return table


def plot_label_counts(labels: pd.DataFrame) -> Figure | None:
    """Stacked bars: labels per annotator, by task kind."""
    if labels.empty:
        return None
    counts = labels.pivot_table(index="annotator", columns="task_kind", values="label_id",
                                aggfunc="count", fill_value=0)
    fig = Figure(figsize=(6, 1.5 + 0.4 * len(counts)), layout="constrained")
    ax = fig.add_subplot()
    left = np.zeros(len(counts))
    for kind in counts.columns:
        ax.barh([plot_literal(name) for name in counts.index], counts[kind], left=left, label=kind)
        left += counts[kind].to_numpy()
    ax.invert_yaxis()
    ax.set_title("labels per annotator", pad=22)
    ax.set_xlabel("labels")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(counts.columns),
              fontsize="small", frameon=False)
    return fig


def plot_biases(labels: pd.DataFrame) -> Figure | None:
    """Left-pick share and agreeing-won rate per annotator, each with its 95% CI; 0.5 = no bias.

    Both panels share one row per annotator (then the overall row, in black); an annotator
    without agreement labels has an empty row in the second panel.
    """
    if labels.empty:
        return None
    bias = stats.position_bias(labels).set_index("annotator")
    rows = bias.index  # every annotator, then stats.OVERALL
    panels = [("share of left picks", bias, "share_left", 0.5),
              ("agreeing response won", stats.agreement_bias(labels).set_index("annotator").reindex(rows),
               "rate", None)]
    y = np.arange(len(rows))
    fig = Figure(figsize=(7, 1.2 + 0.4 * len(rows)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, table, column, reference) in zip(axes, panels):
        share, low, high = (table[c].to_numpy(dtype=float) for c in (column, "ci_low", "ci_high"))
        for keep, colour in ((rows != stats.OVERALL, "tab:blue"), (rows == stats.OVERALL, "black")):
            ax.errorbar(share[keep], y[keep], xerr=[(share - low)[keep], (high - share)[keep]],
                        fmt="o", capsize=3, color=colour)
        if reference is not None:
            ax.axvline(reference, color="grey", linestyle=":")
        ax.set(title=title, xlim=(0, 1))
    axes[0].set(yticks=y, yticklabels=[plot_literal(name) for name in rows])
    axes[0].invert_yaxis()  # shared: once for both
    return fig


def export_zip(store: Store, aggregate: str, fmt: str) -> str:
    """Export the labels (data file + export_config.json) and zip them for download."""
    try:
        config = ExportConfig(out=tempfile.mkdtemp(prefix="rmlab-export-"), format=fmt,
                              aggregate=aggregate)
    except ValueError as err:
        raise gr.Error(str(err)) from err
    export(store, config)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return shutil.make_archive(str(Path(config.out).parent / f"preferences-{aggregate}-{fmt}-{stamp}"),
                               "zip", config.out)


# ----------------------------------------------------------------------------- entry point


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           **kwargs: Any):
    """Launch with the app's theme, CSS and keyboard shortcuts (gradio 6 takes them here)."""
    return demo.queue(default_concurrency_limit=8).launch(
        server_name=host, server_port=port, share=share, css=CSS, head=page_head(),
        theme=gr.themes.Soft(), footer_links=["api"], **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The reward-model lab web app.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--db", default=None,
                        help="SQLite path or database URL (default: env RMLAB_DB, else runs/labels.db)")
    parser.add_argument("--share", action="store_true", help="also serve through a gradio.live link")
    args = parser.parse_args(argv)
    store = open_store(args.db)
    store.ensure_seeded()
    launch(build_ui(store), host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
