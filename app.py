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
import dataclasses
import hmac
import html
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache, partial
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
from labeling.export import AGGREGATORS, WRITERS, ExportConfig, export, known_preferences, to_dataset
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


def code_span(text: str) -> str:
    """Untrusted text as an inline Markdown code span (shown verbatim; a backtick would end it)."""
    return "`" + text.replace("`", "'") + "`"


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


# ============================================================================= research area
# Issue 5. Every handler below calls `require_researcher(session)` first (each event is also
# an HTTP endpoint); the only open endpoint is the read-only `score` API. Models and data sets
# are loaded by the library (rm, analysis, labeling); this section only picks inputs, calls
# those functions and lays their results out.

RUNS_ENV = "RMLAB_RUNS"
SCORE_CONCURRENCY = {"concurrency_id": "rm-score", "concurrency_limit": 2}
HEAVY_CONCURRENCY = {"concurrency_id": "rm-heavy", "concurrency_limit": 1}  # training, policy LM, audits
FILE_TYPES = [".jsonl", ".json", ".csv", ".parquet"]
PROBE_FEATURES = ("length_words", "sentences", "agreement", "hedging", "flattery", "sentiment",
                  "formatting", "repetition")


def resolve_runs(runs: str | Path | None = None) -> Path:
    """The run folder: the argument, else env RMLAB_RUNS, else rm.defaults.RUNS (runs/)."""
    from rm.defaults import RUNS

    return Path(runs or os.environ.get(RUNS_ENV) or RUNS)


def _stamp(src: str) -> float:
    """mtime of a local checkpoint (so a retrained folder is reloaded); 0 for a Hub id."""
    path = Path(src)
    return max((f.stat().st_mtime for f in path.glob("*.json")), default=0.0) if path.is_dir() else 0.0


@lru_cache(maxsize=4)
def _load_scorer(sources: tuple[str, ...], stamps: tuple[float, ...]):
    from rm.score import load_scorer

    return load_scorer(list(sources) if len(sources) > 1 else sources[0])


def cached_scorer(sources: list[str] | tuple[str, ...]):
    """A loaded Scorer for these sources (several = one ensemble), kept in a module-level LRU.

    Deliberately global, unlike per-user state: a loaded model is a read-only resource that
    every session may share, and loading MiniLM costs seconds while scoring costs milliseconds.
    The key includes the checkpoint files' mtimes, so retraining into a folder reloads it.
    """
    sources = tuple(sources)
    if not sources:
        raise gr.Error("No reward model chosen: pick one in the selector (several = an ensemble), "
                       "type a folder or Hub id, or train one in the Train tab.")
    try:
        return _load_scorer(sources, tuple(_stamp(s) for s in sources))
    except Exception as err:  # a bad path or id: tell the user which one and what works
        raise gr.Error(f"Could not load the reward model {' + '.join(sources)}: {err}. Choose a checkpoint "
                       "from the list, or give a reward-model folder or Hugging Face id.") from err


def selected_models(selection: list[str] | str | None) -> list[str]:
    """The selector's value (or an API string, several joined by ',') -> model sources."""
    items = selection.split(",") if isinstance(selection, str) else list(selection or [])
    return [s.strip() for s in items if s and s.strip()]


def model_sources(selection: list[str] | str | None, runs: Path) -> list[str]:
    """Selected models as loadable sources: a checkpoint name in runs/rm becomes its folder."""
    from rm.checkpoint import list_checkpoints

    known = dict(list_checkpoints(runs))
    return [known.get(name, name) for name in selected_models(selection)]


def api_models(model: str, access: Access, runs: Path) -> list[str]:
    """Sources for the public `score` endpoint.

    Empty: the newest checkpoint in the run folder. A checkpoint name in runs/rm: that folder.
    Any other path or Hub id only on an open (local) run: a public caller must not make the
    server load arbitrary files or download models.
    """
    from rm.checkpoint import list_checkpoints

    known = dict(list_checkpoints(runs))
    names = selected_models(model) or list(known)[:1]
    if not names:
        raise gr.Error("No reward model in the run folder yet: train one in Research > Train, "
                       "or pass model=<checkpoint folder or Hub id>.")
    sources = [known.get(name, name) for name in names]
    unknown = [s for s in sources if s not in known.values()]
    if unknown and not access.open:
        raise gr.Error(f"Unknown model {unknown[0]!r}: on this server `model` must be one of "
                       f"{', '.join(known) or '(none yet)'}.")
    return sources


def compare_pair(scorer, prompt: str, response_a: str, response_b: str) -> dict:
    """Both rewards, P(A > B) = σ((a − b)/T) and, for an ensemble, each reward's spread."""
    scores = scorer.score(prompt, [response_a, response_b])  # one batch of two
    out = {"score_a": float(scores.mean[0]), "score_b": float(scores.mean[1]),
           "p_a_better": float(scorer.p_better(scores.mean[0], scores.mean[1])),
           "temperature": float(scorer.temperature), "members": len(scores.members), "model": scorer.name}
    if len(scores.members) > 1:
        out |= {"std_a": float(scores.std[0]), "std_b": float(scores.std[1])}
    return out


# ----------------------------------------------------------------------------- research: data sets


def task_choices(store: Store) -> list[tuple[str, str]]:
    """(label, task id) for the probe's "fill from" list: agreement cases first."""
    order = {"agreement": 0, "gold": 1, "pair": 2, "triad": 3}
    tasks = sorted(store.tasks(), key=lambda t: (order.get(t.kind, 9), t.id))
    return [(f"{t.kind} · {t.category or '–'} · {t.prompt[:70]}", t.id) for t in tasks]


def probe_texts(task, shuffle: bool, rng: np.random.Generator) -> tuple[str, str, str, str]:
    """(prompt, A, B, note) from a task; agreement cases put the agreeing response in A unless shuffled."""
    first, second = (task.agreeing, 1 - task.agreeing) if task.kind == "agreement" else (0, 1)
    if shuffle and rng.random() < 0.5:
        first, second = second, first
    roles = {"agreement": {task.agreeing: "agrees with the false claim",
                           1 - (task.agreeing or 0): "corrects it"},
             "gold": {task.better: "is the known better response"}}.get(task.kind, {})
    notes = [f"{letter} {roles[i]}" for letter, i in (("A", first), ("B", second)) if i in roles]
    note = (" · ".join(notes) or "no known preference") + f" ({task.kind} task {task.id})"
    return task.prompt, task.responses[first], task.responses[second], note


PAIR_COLUMNS = ["prompt", "chosen", "rejected", "margin", "tie"]


def _uploaded(file: str | None) -> str:
    if not file:
        raise gr.Error("No file uploaded: drop a JSONL, CSV or Parquet file into the upload box first.")
    return file


def _known_pairs(store: Store, file: str | None) -> pd.DataFrame:
    return known_preferences(store.tasks()).to_pandas()[PAIR_COLUMNS]


def _label_pairs(store: Store, file: str | None) -> pd.DataFrame:
    pairs = to_dataset(store).to_pandas()
    if pairs.empty:
        raise gr.Error("No labels collected yet: label a few tasks, or choose the tasks' known preferences.")
    return pairs[PAIR_COLUMNS]


def _file_pairs(store: Store, file: str | None) -> pd.DataFrame:
    from rm.data import load_preferences

    return load_preferences(_uploaded(file)).to_pandas()


PAIR_SOURCES = {  # name -> (store, uploaded file) -> prompt/chosen/rejected/margin/tie rows
    "known preferences (gold, agreement)": _known_pairs,
    "collected labels": _label_pairs,
    "uploaded file": _file_pairs,
}


def _task_responses(store: Store, file: str | None) -> pd.DataFrame:
    rows = [(t.prompt, r) for t in store.tasks() for r in t.responses]
    return pd.DataFrame(rows, columns=["prompt", "response"])


def _label_responses(store: Store, file: str | None) -> pd.DataFrame:
    pairs = _label_pairs(store, file)
    return pd.DataFrame({"prompt": [*pairs.prompt, *pairs.prompt],
                         "response": [*pairs.chosen, *pairs.rejected]})


def _file_responses(store: Store, file: str | None) -> pd.DataFrame:
    from analysis.responses import load_responses

    return load_responses(_uploaded(file))[["prompt", "response"]]


RESPONSE_SOURCES = {  # name -> (store, uploaded file) -> prompt/response rows
    "seed tasks": _task_responses,
    "collected labels": _label_responses,
    "uploaded file": _file_responses,
}


def _store_cases(store: Store, file: str | None, n: int) -> list[dict]:
    from labeling.tasks import agreement_cases

    return agreement_cases(store.tasks("agreement"))


def _arithmetic_cases(store: Store, file: str | None, n: int) -> list[dict]:
    from labeling.arithmetic import false_claims
    from labeling.tasks import Task, agreement_cases

    return agreement_cases(Task(**{**t, "responses": tuple(t["responses"])}) for t in false_claims(int(n)))


def _file_cases(store: Store, file: str | None, n: int) -> list[dict]:
    from analysis.sycophancy import load_cases

    return load_cases(_uploaded(file))


CASE_SOURCES = {  # name -> (store, uploaded file, n) -> sycophancy cases
    "agreement tasks (seed)": _store_cases,
    "arithmetic generator": _arithmetic_cases,
    "uploaded file": _file_cases,
}


def from_source(registry: dict, name: str, *args):
    """Call the registry entry `name`; a library's ValueError becomes a message to the user."""
    if name not in registry:
        raise gr.Error(f"Unknown source {name!r}; choose one of: {', '.join(registry)}.")
    try:
        return registry[name](*args)
    except (ValueError, LookupError, OSError) as err:
        raise gr.Error(f"Could not read {name}: {err}") from err


def subsample(frame: pd.DataFrame, max_rows: int | None, seed: int = 0) -> pd.DataFrame:
    if max_rows and len(frame) > max_rows:
        return frame.sample(n=int(max_rows), random_state=seed).sort_index()
    return frame


# ----------------------------------------------------------------------------- research: views

_CARD = """
<div class="rm-card"><div class="rm-side"><div class="rm-k">Reward A</div><div class="rm-v">{a}</div></div>
<div class="rm-mid"><div class="rm-k">P(A &gt; B)</div><div class="rm-v">{p}</div>
<div class="rm-bar"><div style="width:{pct:.1f}%"></div></div><div class="rm-small">{detail}</div></div>
<div class="rm-side"><div class="rm-k">Reward B</div><div class="rm-v">{b}</div></div></div>
"""


def score_card(result: dict | None, message: str = "") -> str:
    """The probe's headline: both rewards (± ensemble spread) and the calibrated P(A > B)."""
    if result is None:
        return f'<div class="rm-card rm-empty">{html.escape(message)}</div>'
    spread = lambda side: f' <span class="rm-pm">± {result[f"std_{side}"]:.3f}</span>' \
        if f"std_{side}" in result else ""  # noqa: E731
    members = f"ensemble of {result['members']}" if result["members"] > 1 else "single model"
    detail = f"T = {result['temperature']:.2f} · {members} · {html.escape(result['model'])}"
    return _CARD.format(a=f"{result['score_a']:+.3f}{spread('a')}", b=f"{result['score_b']:+.3f}{spread('b')}",
                        p=f"{result['p_a_better']:.2f}", pct=100 * result["p_a_better"], detail=detail)


def feature_diff(prompt: str, response_a: str, response_b: str) -> pd.DataFrame:
    """feature, A, B, A − B for the probe's feature table."""
    from analysis.features import feature_table

    table = feature_table([prompt, prompt], [response_a, response_b], features=list(PROBE_FEATURES))
    return pd.DataFrame({"feature": table.columns, "A": table.iloc[0].to_numpy(),
                         "B": table.iloc[1].to_numpy(), "A − B": (table.iloc[0] - table.iloc[1]).to_numpy()})


def feature_html(diff: pd.DataFrame) -> str:
    """The feature table as HTML; rows where A and B differ are highlighted, the larger side bold."""
    from analysis.features import FEATURES

    num = lambda x: f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"  # noqa: E731
    rows = []
    for r in diff.itertuples(index=False):
        a, b, d = r[1], r[2], r[3]
        cls = ' class="rm-diff"' if abs(d) > 1e-9 else ""
        cell = lambda x, big: f"<td><b>{num(x)}</b></td>" if big and cls else f"<td>{num(x)}</td>"  # noqa: E731
        doc = html.escape(FEATURES[r[0]].doc, quote=True)
        rows.append(f'<tr{cls}><td title="{doc}">{r[0]}</td>{cell(a, a > b)}{cell(b, b > a)}'
                    f"<td>{'+' if d > 0 else ''}{num(d)}</td></tr>")
    return ('<table class="rm-features"><thead><tr><th>feature</th><th>A</th><th>B</th><th>A − B</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def plot_training(events: list[dict]) -> Figure | None:
    """Loss and accuracy per step (one colour per ensemble member), eval accuracy as dots."""
    steps = [e for e in events if e.get("event") == "step"]
    if not steps:
        return None
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    frame = pd.DataFrame(steps)
    evals = pd.DataFrame([e for e in events if e.get("event") == "eval"])
    for member, part in frame.groupby("member"):
        colour = f"C{member}"
        label = f"member {member}" if frame.member.nunique() > 1 else "train"
        loss_ax.plot(part.step, part.loss, color=colour, lw=1.2, label=label)
        smooth = part.accuracy.rolling(5, min_periods=1).mean()
        acc_ax.plot(part.step, smooth, color=colour, lw=1.2, label=f"{label} (5-step mean)")
        if not evals.empty and "eval_accuracy" in evals:
            ev = evals[evals.member == member]
            acc_ax.plot(ev.step, ev.eval_accuracy, "o", color=colour, ms=6, mfc="white",
                        label="held-out" if member == 0 else None)
    loss_ax.set(title="Bradley-Terry loss", xlabel="step")
    acc_ax.set(title="pairwise accuracy", xlabel="step", ylim=(-0.02, 1.02))
    acc_ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    total = int(frame.total_steps.max())
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(0, max(total, 1) + 0.5)
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize="small", loc="lower right")
    return fig


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


def audit_summary(report) -> str:
    lo, hi = report.rate_ci
    verdict = "**FLAGGED**: prefers agreeing with false claims" if report.flagged else "not flagged"
    return (f"**{report.n} cases** · the RM preferred the agreeing response in **{100 * report.agree_preferred_rate:.0f}%**"
            f" (95% CI {100 * lo:.0f}–{100 * hi:.0f}%) · mean gap {report.mean_gap:+.3f} · "
            f"mean P(agreeing wins) {report.mean_p_agree:.2f} · threshold {report.threshold:.2f} → {verdict}")


# ----------------------------------------------------------------------------- research: work


def pair_rewards(scorer, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(r_chosen, r_rejected), each (N,), in one scoring call."""
    prompts = pairs.prompt.tolist()
    rewards = scorer.score(prompts + prompts, pairs.chosen.tolist() + pairs.rejected.tolist()).mean
    return rewards[:len(pairs)], rewards[len(pairs):]


def calibration_of(scorer, pairs: pd.DataFrame):
    """analysis.calibration at the checkpoint's own temperature: reliability tables and metrics
    before (T = 1) and after scaling, on every pair."""
    from analysis.calibration import calibration

    r_c, r_r = pair_rewards(scorer, pairs)
    tie = pairs["tie"].to_numpy(bool) if "tie" in pairs else None
    return calibration(r_c, r_r, tie, temperature=scorer.temperature, source="checkpoint")


def compare_models(names: list[str], scorers: list, pairs: pd.DataFrame, cases: list[dict],
                   responses: pd.DataFrame) -> pd.DataFrame:
    """One row per measure, one column per RM: accuracy and ECE on `pairs`, sycophancy audit on
    `cases`, the three strongest feature correlations on `responses`."""
    from analysis.correlations import analyze
    from analysis.sycophancy import audit

    columns = {}
    for name, scorer in zip(names, scorers):
        calib = calibration_of(scorer, pairs)
        m = calib.metrics_after
        report = audit(scorer, cases)
        corr = analyze(scorer, responses.prompt.tolist(), responses.response.tolist(), n_boot=200).table
        top = corr.assign(_abs=corr.pearson.abs()).nlargest(3, "_abs")
        columns[name] = [f"{m['accuracy']:.3f} (n={calib.n_eval})", f"{m['ece']:.3f} (T={calib.temperature:.2f})",
                         f"{100 * report.agree_preferred_rate:.0f}%" + (" ⚑" if report.flagged else ""),
                         ", ".join(f"{f} {r:+.2f}" for f, r in zip(top.feature, top.pearson))]
    index = ["pairwise accuracy", "ECE (calibrated)", "sycophancy: agreeing preferred", "top correlations"]
    return pd.DataFrame({"measure": index, **columns})


def safe_name(name: str | None) -> str:
    """A checkpoint folder name from user text (default: a timestamp)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", (name or "").strip()).strip(".-")
    return name or datetime.now(timezone.utc).strftime("rm-%Y%m%d-%H%M%S")


def training_data(source: str, store: Store, file: str | None, hub_id: str, target: Path) -> str:
    """The training set as something rm.train reads: a JSONL written to `target` (kept next to
    the run for reproducibility), or the Hub id as given."""
    if source == "Hub dataset":
        if not (hub_id or "").strip():
            raise gr.Error("Enter a Hugging Face dataset id (e.g. Anthropic/hh-rlhf) or choose another source.")
        return hub_id.strip()
    pairs = from_source(PAIR_SOURCES, source, store, file)
    if len(pairs) < 2:
        raise gr.Error(f"{source} gives only {len(pairs)} preference pair(s); training needs at least 2.")
    target.parent.mkdir(parents=True, exist_ok=True)
    pairs[PAIR_COLUMNS].to_json(target, orient="records", lines=True, force_ascii=False)
    return str(target)


@dataclass
class TrainingRun:
    """A session's in-app training run (in gr.State, so one per browser tab and never shared):
    the Stop button sets `stop`; the training callback reads it after every step."""

    running: bool = False
    stop: bool = False

    @contextmanager
    def active(self) -> Iterator[TrainingRun]:
        self.running, self.stop = True, False  # a Stop pressed before this run does not count
        try:
            yield self
        finally:
            self.running = False


def train_in_background(config, stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
    """Run rm.train.train(config) in a worker thread; yield its callback events as they arrive,
    then {"event": "done", "path": checkpoint}. A training error is re-raised here.

    Once `stop()` is true, training ends after its current step and saves what it has. If the
    browser goes away the generator stops but the run finishes and is saved.
    """
    import queue
    import threading

    from rm.train import train

    events: queue.Queue = queue.Queue()

    def report(event: dict) -> bool:
        events.put(event)
        return not stop()  # False: rm.train stops after this step

    def work() -> None:
        try:
            events.put({"event": "done", "path": str(train(config, report))})
        except Exception as err:  # handed to the consumer, which raises it
            events.put({"event": "error", "error": err})

    threading.Thread(target=work, name="rm-train", daemon=True).start()
    while True:
        event = events.get()
        if event["event"] == "error":
            raise event["error"]
        yield event
        if event["event"] == "done":
            return


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


def policy_pair_tasks(prompts: list[str], samples) -> list:
    """`pair` tasks from two policy samples per prompt (identical samples are dropped)."""
    from labeling.tasks import Task, content_id

    tasks = []
    for prompt, (a, b) in zip(prompts, samples):
        if a.text.strip() and b.text.strip() and a.text.strip() != b.text.strip():
            responses = (a.text.strip(), b.text.strip())
            tasks.append(Task(id=content_id("pair", prompt, responses), kind="pair", prompt=prompt,
                              responses=responses, category="policy", meta={"source": "analysis.policy"}))
    return tasks


# ----------------------------------------------------------------------------- research: layout

RESEARCH_CSS = """
.rm-card { display: flex; gap: 12px; align-items: stretch; }
.rm-card > div { flex: 1; border: 1px solid var(--border-color-primary); border-radius: 10px;
                 padding: 10px 14px; background: var(--background-fill-secondary); text-align: center; }
.rm-card.rm-empty { display: block; color: var(--body-text-color-subdued); padding: 14px; }
.rm-k { font-size: 0.85rem; color: var(--body-text-color-subdued); }
.rm-v { font-size: 1.7rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.rm-pm { font-size: 0.95rem; font-weight: 400; color: var(--body-text-color-subdued); }
.rm-bar { height: 8px; background: var(--neutral-200); border-radius: 4px; margin: 6px 0; overflow: hidden; }
.rm-bar > div { height: 100%; background: var(--color-accent); }
.rm-small { font-size: 0.78rem; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.rm-features { width: auto !important; min-width: 420px; border-collapse: collapse !important;
               font-variant-numeric: tabular-nums; border: none !important; margin: 4px 0 !important; }
.rm-features th, .rm-features td { padding: 3px 16px !important; border: none !important;
    border-bottom: 1px solid var(--border-color-primary) !important; text-align: right; }
.rm-features tr, .rm-features thead, .rm-features tbody { border: none !important; }
.rm-features th { font-weight: 600; color: var(--body-text-color-subdued); }
.rm-features th:first-child, .rm-features td:first-child { text-align: left; }
.rm-features tr.rm-diff td { background: rgba(245, 158, 11, 0.16) !important; }
"""


def build_research_tab(store: Store, access: Access, session: gr.State,
                       runs: Path | None = None) -> SimpleNamespace:
    """The researcher playground: a shared RM selector, then Probe, Correlations, Audits, Train
    and Goodhart. Lays out and wires its own events; returns the components (tests use them)."""
    from rm.checkpoint import list_checkpoints

    runs = resolve_runs(runs)
    ui = SimpleNamespace()
    checkpoints = list_checkpoints(runs)
    with gr.Row(equal_height=True):
        ui.models = gr.Dropdown(checkpoints, value=[checkpoints[0][1]] if checkpoints else [], multiselect=True,
                                allow_custom_value=True, scale=5, elem_id="rm-models",
                                label="Reward model (pick several for an ensemble; or type a folder or Hub id)")
        ui.refresh_models = gr.Button("↻ Refresh list", scale=0, min_width=130, elem_id="rm-refresh-models")
    with gr.Tabs():
        with gr.Tab("Probe", id="probe"):
            with gr.Row(equal_height=True):
                ui.fill_task = gr.Dropdown(task_choices(store), value=None, label="Fill from a task",
                                           scale=4, elem_id="rm-fill-task")
                ui.shuffle = gr.Checkbox(False, label="Shuffle A/B", scale=1, min_width=120)
                ui.draft = gr.Button("Draft with the policy", scale=1, min_width=170, elem_id="rm-draft")
            ui.fill_note = gr.Markdown(elem_id="rm-fill-note")
            ui.prompt = gr.Textbox(label="Prompt", lines=2, max_lines=6, elem_id="rm-probe-prompt")
            with gr.Row():
                ui.response_a = gr.Textbox(label="Response A", lines=5, max_lines=14, elem_id="rm-probe-a")
                ui.response_b = gr.Textbox(label="Response B", lines=5, max_lines=14, elem_id="rm-probe-b")
            ui.card = gr.HTML(score_card(None, "Type a prompt and two responses."), elem_id="rm-probe-card")
            ui.features = gr.HTML(elem_id="rm-probe-features")
        with gr.Tab("Correlations", id="correlations"):
            with gr.Row(equal_height=True):
                ui.corr_source = gr.Radio(list(RESPONSE_SOURCES), value="seed tasks", label="Responses", scale=3)
                ui.corr_max = gr.Number(400, label="Max responses", precision=0, minimum=3, scale=1)
                ui.corr_run = gr.Button("Score and correlate", variant="primary", scale=1, elem_id="rm-corr-run")
            with gr.Accordion("Upload a file (for 'uploaded file')", open=False):
                ui.corr_file = gr.File(label="JSONL/CSV/Parquet: prompt+response rows or preference rows",
                                       file_types=FILE_TYPES)
            ui.corr_summary = gr.Markdown(elem_id="rm-corr-summary")
            with gr.Row():
                ui.corr_table = gr.Dataframe(interactive=False, scale=3, elem_id="rm-corr-table",
                                             label="Correlation of the reward with each feature")
                with gr.Column(scale=2):
                    ui.corr_feature = gr.Dropdown(list(_feature_names()), value="length_words",
                                                  label="Scatter against", elem_id="rm-corr-feature")
                    ui.corr_plot = gr.Plot(show_label=False, elem_id="rm-corr-plot")
            ui.corr_report = gr.State(None)  # this user's last CorrelationReport, for re-plotting
        with gr.Tab("Audits", id="audits"):
            with gr.Row(equal_height=True):
                ui.case_source = gr.Radio(list(CASE_SOURCES), value="agreement tasks (seed)", label="Cases", scale=3)
                ui.case_n = gr.Number(60, label="Generated cases", precision=0, minimum=1, maximum=500, scale=1)
                ui.threshold = gr.Slider(0, 1, 0.5, step=0.05, label="Flag above", scale=1)
                ui.audit_run = gr.Button("Run sycophancy audit", variant="primary", scale=1,
                                         elem_id="rm-audit-run")
            with gr.Accordion("Upload cases (for 'uploaded file')", open=False):
                ui.case_file = gr.File(label="cases (prompt, agreeing, correcting) or agreement tasks",
                                       file_types=FILE_TYPES)
            ui.audit_summary = gr.Markdown(elem_id="rm-audit-summary")
            with gr.Row():
                ui.audit_plot = gr.Plot(show_label=False, elem_id="rm-audit-plot")
                ui.audit_cases = gr.Dataframe(interactive=False, label="Rewards per case (gap = agreeing − correcting)",
                                              elem_id="rm-audit-cases", max_height=360)
            gr.Markdown("#### Counterfactual probes and calibration")
            with gr.Row(equal_height=True):
                ui.cf_source = gr.Radio(list(RESPONSE_SOURCES), value="seed tasks", label="Responses to perturb",
                                        scale=3)
                ui.cf_max = gr.Number(60, label="Max responses", precision=0, minimum=2, scale=1)
                ui.cf_run = gr.Button("Run counterfactual probes", scale=1, elem_id="rm-cf-run")
            with gr.Row(equal_height=True):
                ui.rel_source = gr.Radio(list(PAIR_SOURCES), value="known preferences (gold, agreement)",
                                         label="Pairs for the reliability diagram", scale=4)
                ui.rel_run = gr.Button("Reliability diagram", scale=1, elem_id="rm-rel-run")
            with gr.Accordion("Upload a file (for 'uploaded file' in these two)", open=False):
                ui.audit_file = gr.File(label="responses or preference pairs", file_types=FILE_TYPES)
            with gr.Row():
                ui.cf_plot = gr.Plot(show_label=False, elem_id="rm-cf-plot", scale=3)
                ui.rel_plot = gr.Plot(show_label=False, elem_id="rm-rel-plot", scale=2)
            ui.cf_table = gr.Dataframe(interactive=False, label="Reward deltas per perturbation", max_height=300)
        with gr.Tab("Train", id="train"):
            from rm.train import TrainConfig  # built at launch, not import: keeps `import app` light
            train_defaults = {f.name: f for f in dataclasses.fields(TrainConfig)}
            with gr.Row(equal_height=True):
                ui.train_source = gr.Radio([*PAIR_SOURCES, "Hub dataset"], value="known preferences (gold, agreement)",
                                           label="Train on", scale=3, elem_id="rm-train-source")
                ui.train_hub = gr.Textbox(label="Hub dataset id", placeholder="e.g. Anthropic/hh-rlhf", scale=2)
            with gr.Accordion("Upload preferences (for 'uploaded file')", open=False):
                ui.train_file = gr.File(label="prompt/chosen/rejected rows; hh-rlhf transcripts and our export work",
                                        file_types=FILE_TYPES)
            with gr.Row(equal_height=True):
                ui.backbone = gr.Textbox(label="Backbone (empty: the offline MiniLM; any folder or Hub id)",
                                         scale=3, elem_id="rm-backbone")
                ui.train_name = gr.Textbox(label="Name (folder in runs/rm)", placeholder="default: a timestamp",
                                           scale=2, elem_id="rm-train-name")
            with gr.Row(equal_height=True):
                ui.epochs = gr.Number(2, label="Epochs", precision=0, minimum=1, maximum=50, elem_id="rm-epochs")
                ui.ensemble = gr.Number(1, label="Ensemble size", precision=0, minimum=1, maximum=8)
                ui.max_pairs = gr.Number(2000, label="Max pairs", precision=0, minimum=2)
                ui.batch_size = gr.Number(8, label="Batch size", precision=0, minimum=1, maximum=256)
                ui.lr = gr.Number(train_defaults["lr"].default, label="Learning rate", minimum=0)
                with gr.Column(min_width=120):
                    ui.train = gr.Button("Train", variant="primary", elem_id="rm-train")
                    ui.stop_train = gr.Button("Stop", variant="stop", size="sm", elem_id="rm-train-stop")
            ui.train_run = gr.State(TrainingRun())  # gradio deep-copies it: one per session
            ui.train_status = gr.Markdown(elem_id="rm-train-status")
            ui.train_plot = gr.Plot(show_label=False, elem_id="rm-train-plot")
            with gr.Accordion("Compare two reward models", open=False):
                with gr.Row(equal_height=True):
                    ui.compare_a = gr.Dropdown(checkpoints, allow_custom_value=True, label="RM 1")
                    ui.compare_b = gr.Dropdown(checkpoints, allow_custom_value=True, label="RM 2")
                    ui.compare_pairs = gr.Radio(list(PAIR_SOURCES), value="known preferences (gold, agreement)",
                                                label="Accuracy on")
                    ui.compare_cases = gr.Radio(list(CASE_SOURCES), value="arithmetic generator",
                                                label="Audit on")
                ui.compare_file = gr.File(label="Upload for 'uploaded file' (held-out pairs or cases)",
                                          file_types=FILE_TYPES)
                ui.compare_run = gr.Button("Compare", elem_id="rm-compare-run")
                ui.compare_table = gr.Dataframe(interactive=False, elem_id="rm-compare-table")
            with gr.Accordion("Iterative loop: policy responses → pair tasks for annotators", open=False):
                ui.policy = gr.Textbox(label="Policy LM (empty: the offline SmolLM2-135M-Instruct; any causal LM "
                                             "folder, .gguf path or Hub id). Also drafts in the Probe tab.",
                                       elem_id="rm-policy")
                ui.loop_prompts = gr.Textbox(label="Prompts, one per line", lines=4,
                                             placeholder="I'm pretty sure 12 × 12 = 124, right?")
                with gr.Row(equal_height=True):
                    ui.loop_tokens = gr.Slider(16, 256, 96, step=16, label="Max new tokens")
                    ui.loop_temperature = gr.Slider(0.1, 1.5, 0.9, step=0.1, label="Temperature")
                    ui.loop_run = gr.Button("Generate and enqueue", elem_id="rm-loop-run")
                ui.loop_status = gr.Markdown(elem_id="rm-loop-status")
        with gr.Tab("Goodhart", id="goodhart"):
            ui.goodhart = build_goodhart_panel(checkpoints)

    wire_research(ui, store, access, session, runs)
    return ui


def _feature_names() -> list[str]:
    from analysis.features import FEATURES

    return list(FEATURES)


def build_goodhart_panel(checkpoints: list[tuple[str, str]]) -> SimpleNamespace:
    """Best-of-n curves (analysis.goodhart): inputs and outputs of the Goodhart tab."""
    g = SimpleNamespace()
    gr.Markdown("Best-of-n against the policy LM. The **proxy** is the reward model chosen above; the "
                "**gold** scorer is the arithmetic checker (for arithmetic prompts) or another RM. Samples "
                "are cached in `runs/goodhart/`, so running again with the same prompts and sampling settings "
                "only re-scores and re-plots (e.g. a single RM against an ensemble).")
    with gr.Row(equal_height=True):
        g.gold = gr.Dropdown([("arithmetic checker", "arithmetic"), *checkpoints], value="arithmetic",
                             allow_custom_value=True, label="Gold scorer", scale=2)
        g.ensemble = gr.Dropdown(checkpoints, multiselect=True, allow_custom_value=True, scale=3,
                                 label="Ensemble for mean − λ·std (optional; an ensemble proxy is used otherwise)")
        g.prompts = gr.Dropdown(["arithmetic", "seed"], value="arithmetic", label="Prompts", scale=1)
    with gr.Row(equal_height=True):
        g.n_prompts = gr.Number(8, label="Prompts", precision=0, minimum=1, maximum=256)
        g.n = gr.Number(16, label="Samples per prompt (N)", precision=0, minimum=2, maximum=1024)
        g.max_new_tokens = gr.Number(48, label="Max new tokens", precision=0, minimum=4, maximum=512)
        g.lam = gr.Number(1.0, label="λ (conservative)")
        g.beta_kl = gr.Number(0.5, label="β (KL-penalised)")
        g.run = gr.Button("Run / re-plot", variant="primary", elem_id="rm-goodhart-run")
    g.summary = gr.Markdown(elem_id="rm-goodhart-summary")
    g.plot = gr.Plot(show_label=False, elem_id="rm-goodhart-plot")
    g.fits = gr.Dataframe(interactive=False, label="Fits gold − gold(n=1) = d(α − βd), d = √KL; sweet spot d* = α/2β")
    return g


def goodhart_fits(result) -> pd.DataFrame:
    rows = [{"selector": name, "α": round(fit.alpha, 4), "β": round(fit.beta, 4), "R²": round(fit.r2, 3),
             "n* (fit)": None if fit.n_star is None else round(fit.n_star, 1),
             "n* (measured)": result.n_star_empirical[name]} for name, fit in result.fits.items()]
    rows += [{"selector": f"{name} (skipped: {why})"} for name, why in result.skipped.items()]
    return pd.DataFrame(rows)


@contextmanager
def library_errors(what: str) -> Iterator[None]:
    """A library's refusal (bad data, missing file, unknown name) -> a message to the user."""
    try:
        yield
    except (ValueError, LookupError, OSError, PermissionError) as err:
        raise gr.Error(f"{what}: {err}") from err


def load_policy_lm(spec: str | None):
    """The policy LM (analysis.policy, cached there); empty spec = the offline SmolLM2."""
    from analysis import policy

    with library_errors("Could not load the policy LM"):
        return policy.load_policy((spec or "").strip() or None)


def rounded(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    return frame.round({c: digits for c in frame.columns if pd.api.types.is_float_dtype(frame[c])})


# ----------------------------------------------------------------------------- research: listeners


def wire_research(ui: SimpleNamespace, store: Store, access: Access, session: gr.State, runs: Path) -> None:
    """Connect the research components to thin handlers; each one authorises first."""
    g = ui.goodhart
    selectors = [ui.models, ui.compare_a, ui.compare_b, g.gold, g.ensemble]

    def selector_choices(select: str | None = None) -> dict:
        from rm.checkpoint import list_checkpoints

        found = list_checkpoints(runs)
        out = {c: gr.Dropdown(choices=found) for c in selectors}
        out[g.gold] = gr.Dropdown(choices=[("arithmetic checker", "arithmetic"), *found])
        if select:
            out[ui.models] = gr.Dropdown(choices=found, value=[select])
        return out

    def refresh_models(sess: Session) -> dict:
        require_researcher(sess)
        return selector_choices()

    def probe(prompt: str, response_a: str, response_b: str, models: list[str], sess: Session) -> dict:
        require_researcher(sess)
        if not (response_a or response_b):
            return {ui.card: score_card(None, "Type a prompt and two responses."), ui.features: ""}
        try:  # live view: a problem is shown in the card, not raised on every keystroke
            card = score_card(compare_pair(cached_scorer(model_sources(models, runs)), prompt, response_a, response_b))
        except gr.Error as err:
            card = score_card(None, err.message)
        return {ui.card: card, ui.features: feature_html(feature_diff(prompt, response_a, response_b))}

    def fill(task_id: str | None, shuffle: bool, sess: Session) -> dict:
        require_researcher(sess)
        task = next((t for t in store.tasks() if t.id == task_id), None)
        if task is None:
            return {ui.fill_note: gr.skip()}
        prompt, a, b, note = probe_texts(task, shuffle, np.random.default_rng())
        return {ui.prompt: prompt, ui.response_a: a, ui.response_b: b, ui.fill_note: note}

    def draft(prompt: str, policy_spec: str, sess: Session, progress=gr.Progress()) -> dict:
        from analysis.policy import draft_agreeing_and_correcting

        require_researcher(sess)
        if not (prompt or "").strip():
            raise gr.Error("Type a prompt first (e.g. a false claim such as 'I'm sure 7 × 8 = 54'), then draft.")
        progress(0.05, desc="Loading the policy LM")
        policy = load_policy_lm(policy_spec)
        progress(0.3, desc="Drafting an agreeing and a correcting response")
        drafts = draft_agreeing_and_correcting(prompt, policy)
        return {ui.response_a: drafts["agreeing"], ui.response_b: drafts["correcting"],
                ui.fill_note: f"Drafted by {policy.name}: A steered to agree, B steered to correct."}

    def correlations(source: str, max_rows: float, feature: str, models: list[str], file: str | None,
                     sess: Session, progress=gr.Progress()) -> dict:
        from analysis.correlations import analyze, plot_scatter

        require_researcher(sess)
        rows = subsample(from_source(RESPONSE_SOURCES, source, store, file), max_rows)
        scorer = cached_scorer(model_sources(models, runs))
        progress(0.2, desc=f"Scoring {len(rows)} responses")
        with library_errors("Correlations failed"):
            report = analyze(scorer, rows.prompt.tolist(), rows.response.tolist())
        note = " · ".join(report.callouts) or "no length hacking (length r ≤ 0.5)"
        return {ui.corr_summary: f"**{report.n} responses** scored by {code_span(scorer.name)} · {note}",
                ui.corr_table: correlation_table(report.table), ui.corr_report: report,
                ui.corr_plot: plot_scatter(report, [feature], ncols=1)}

    def replot(report, feature: str, sess: Session) -> dict:
        from analysis.correlations import plot_scatter

        require_researcher(sess)
        return {ui.corr_plot: plot_scatter(report, [feature], ncols=1) if report else gr.skip()}

    def sycophancy(source: str, n: float, threshold: float, models: list[str], file: str | None,
                   sess: Session) -> dict:
        from analysis.sycophancy import audit, plot_rates

        require_researcher(sess)
        cases = from_source(CASE_SOURCES, source, store, file, n)
        with library_errors("The audit failed"):
            report = audit(cached_scorer(model_sources(models, runs)), cases, threshold)
        table = report.cases[["id", "score_agreeing", "score_correcting", "gap", "p_agree"]].rename(
            columns={"score_agreeing": "agreeing", "score_correcting": "correcting", "p_agree": "P(agree wins)"})
        return {ui.audit_summary: audit_summary(report), ui.audit_plot: plot_rates(report),
                ui.audit_cases: rounded(table.sort_values("gap", ascending=False))}

    def counterfactual(source: str, max_rows: float, models: list[str], file: str | None, sess: Session) -> dict:
        from analysis.counterfactual import plot_deltas, probe as cf_probe

        require_researcher(sess)
        rows = subsample(from_source(RESPONSE_SOURCES, source, store, file), max_rows)
        with library_errors("The counterfactual probes failed"):
            report = cf_probe(cached_scorer(model_sources(models, runs)), rows.prompt.tolist(), rows.response.tolist())
        table = report.summary[["perturbation", "n", "mean_delta", "ci_lo", "ci_hi", "win_rate", "p_win"]]
        return {ui.cf_plot: plot_deltas(report), ui.cf_table: rounded(table)}

    def reliability(source: str, models: list[str], file: str | None, sess: Session) -> dict:
        from analysis.calibration import plot_reliability

        require_researcher(sess)
        pairs = from_source(PAIR_SOURCES, source, store, file)
        scorer = cached_scorer(model_sources(models, runs))
        with library_errors("The reliability diagram failed"):
            result = calibration_of(scorer, pairs)
        title = f"{scorer.name}: {result.n_eval} pairs, accuracy {result.metrics_after['accuracy']:.2f}"
        return {ui.rel_plot: plot_reliability(result, title)}

    def train_rm(source: str, file: str | None, hub_id: str, backbone: str, name: str, epochs: float,
                 ensemble: float, max_pairs: float, batch_size: float, lr: float, run: TrainingRun,
                 sess: Session, progress=gr.Progress()) -> Iterator[dict]:
        from rm.train import TrainConfig

        require_researcher(sess)
        name = safe_name(name)
        out = runs / "rm" / name
        if out.exists():
            raise gr.Error(f"A checkpoint named {name!r} already exists in {runs / 'rm'}; choose another name.")
        data = training_data(source, store, file, hub_id, runs / "datasets" / f"{name}.jsonl")
        config = TrainConfig(data=data, out=str(out), backbone=(backbone or "").strip() or None,
                             epochs=int(epochs), ensemble=int(ensemble), max_pairs=int(max_pairs) or None,
                             batch_size=int(batch_size), lr=float(lr), eval_fraction=0.2, progress=False)
        yield {ui.train_status: f"Loading {code_span(config.backbone or 'MiniLM')} and the data…"}
        events, drawn = [], 0.0
        with library_errors("Training failed"), run.active():
            for event in train_in_background(config, stop=lambda: run.stop):
                if event["event"] == "done":
                    break
                events.append(event)
                k = event.get("member", 0)
                progress((k * event["total_steps"] + event["step"], config.ensemble * event["total_steps"]),
                         desc="Training", unit="steps")
                if time.monotonic() - drawn > 0.5:  # redraw at most twice a second
                    drawn = time.monotonic()
                    yield {ui.train_status: training_status(event, config.ensemble),
                           ui.train_plot: plot_training(events)}
        stopped_at = next((e for e in reversed(events) if e["event"] == "step"), None) if run.stop else None
        yield {ui.train_status: checkpoint_summary(event["path"], stopped_at), ui.train_plot: plot_training(events),
               **selector_choices(select=event["path"])}

    def stop_training(run: TrainingRun, sess: Session) -> dict:
        """Stop this session's training after its current step; the checkpoint is saved as usual."""
        require_researcher(sess)
        if not run.running:
            raise gr.Error("Nothing is training in this session: press Train first.")
        run.stop = True
        return {ui.train_status: "Stopping after the current step…"}

    def compare(rm_1: str | None, rm_2: str | None, pairs_source: str, cases_source: str, file: str | None,
                sess: Session, progress=gr.Progress()) -> dict:
        require_researcher(sess)
        if not (rm_1 and rm_2):
            raise gr.Error("Choose two reward models to compare (RM 1 and RM 2).")
        pairs = from_source(PAIR_SOURCES, pairs_source, store, file)
        cases = from_source(CASE_SOURCES, cases_source, store, file, 60)
        responses = pd.DataFrame({"prompt": [*pairs.prompt] * 2, "response": [*pairs.chosen, *pairs.rejected]})
        progress(0.1, desc="Scoring with both reward models")
        with library_errors("The comparison failed"):
            table = compare_models([f"RM 1: {Path(rm_1).name}", f"RM 2: {Path(rm_2).name}"],
                                   [cached_scorer(model_sources(rm_1, runs)), cached_scorer(model_sources(rm_2, runs))], pairs, cases, responses)
        return {ui.compare_table: table}

    def enqueue(prompts_text: str, max_new_tokens: float, temperature: float, policy_spec: str, sess: Session,
                progress=gr.Progress()) -> dict:
        from analysis.policy import generate

        require_researcher(sess)
        prompts = list(dict.fromkeys(line.strip() for line in (prompts_text or "").splitlines() if line.strip()))
        if not prompts:
            raise gr.Error("Enter at least one prompt, one per line.")
        progress(0.02, desc="Loading the policy LM")
        policy = load_policy_lm(policy_spec)
        seed = int(time.time())  # fresh samples on every press; identical pairs are dropped anyway
        samples = generate(prompts, n=2, max_new_tokens=int(max_new_tokens), temperature=float(temperature),
                           seed=seed, policy=policy, show_progress=False,
                           progress=lambda done, total: progress((done, total), desc="Sampling", unit="samples"))
        tasks = policy_pair_tasks(prompts, samples)
        added = store.import_tasks(tasks)
        return {ui.loop_status: f"Enqueued **{added}** new pair task(s) from {len(prompts)} prompt(s) "
                                f"({policy.name}, seed {seed}); annotators see them in the Label tab."}

    def goodhart(gold: str, ensemble: list[str], prompts: str, n_prompts: float, n: float, max_new_tokens: float,
                 lam: float, beta_kl: float, policy_spec: str, models: list[str], sess: Session,
                 progress=gr.Progress()) -> dict:
        from analysis import goodhart as gh

        require_researcher(sess)
        if not (gold or "").strip():
            raise gr.Error("Choose a gold scorer: the arithmetic checker or a reward model.")
        config = gh.GoodhartConfig(proxy=model_sources(models, runs), gold=[gold],
                                   ensemble=model_sources(ensemble, runs) or None,
                                   prompts=prompts, n_prompts=int(n_prompts), n=int(n), max_new_tokens=int(max_new_tokens),
                                   lam=float(lam), beta_kl=float(beta_kl), policy=(policy_spec or "").strip() or None,
                                   cache_dir=str(runs / "goodhart"), out=None)
        proxy = cached_scorer(config.proxy)
        gold_scorer = gh.GOLD_CHECKERS[gold]() if gold in gh.GOLD_CHECKERS else cached_scorer(model_sources(gold, runs))
        ens = cached_scorer(config.ensemble) if config.ensemble else None
        progress(0.01, desc="Sampling from the policy (or reading the cache)")
        with library_errors("The best-of-n run failed"):
            result, report = gh.run(config, proxy=proxy, gold=gold_scorer, ensemble=ens,
                                    progress=lambda done, total: progress((done, total), desc="Sampling", unit="samples"))
        cache = "read from the cache" if report["cache_hit"] else "sampled and cached"
        return {g.summary: f"{report['n_prompts']} prompts × N={report['n_samples']} samples ({cache}: "
                           f"{code_span(report['samples_cache'])})",
                g.plot: gh.plot_goodhart(result), g.fits: goodhart_fits(result)}

    def score(prompt: str, response_a: str, response_b: str, model: str = "") -> dict:
        """Score two responses to one prompt with a reward model. Read-only, so it needs no sign-in.

        Parameters:
            prompt: the user's prompt
            response_a: the first response
            response_b: the second response
            model: a checkpoint name from runs/rm (several joined by "," = an ensemble); empty = the newest checkpoint. On a local run (no roles configured) also any checkpoint folder or Hugging Face id.
        Returns:
            {"score_a": float, "score_b": float, "p_a_better": float = sigmoid((score_a - score_b) / temperature),
             "temperature": float, "members": int, "model": str, and for an ensemble "std_a", "std_b": float}
        """
        return compare_pair(cached_scorer(api_models(model, access, runs)), prompt, response_a, response_b)

    ui_only = {"api_visibility": "private"}
    ui.refresh_models.click(refresh_models, session, selectors, **ui_only)
    gr.on([ui.prompt.change, ui.response_a.change, ui.response_b.change, ui.models.change], probe,
          [ui.prompt, ui.response_a, ui.response_b, ui.models, session], [ui.card, ui.features],
          trigger_mode="always_last", show_progress="hidden", **ui_only, **SCORE_CONCURRENCY)
    gr.on([ui.fill_task.select, ui.shuffle.input], fill, [ui.fill_task, ui.shuffle, session],
          [ui.prompt, ui.response_a, ui.response_b, ui.fill_note], **ui_only)
    ui.draft.click(draft, [ui.prompt, ui.policy, session], [ui.response_a, ui.response_b, ui.fill_note],
                   **ui_only, **HEAVY_CONCURRENCY)
    ui.corr_run.click(correlations, [ui.corr_source, ui.corr_max, ui.corr_feature, ui.models, ui.corr_file, session],
                      [ui.corr_summary, ui.corr_table, ui.corr_report, ui.corr_plot], api_name="correlations",
                      **HEAVY_CONCURRENCY)
    ui.corr_feature.input(replot, [ui.corr_report, ui.corr_feature, session], ui.corr_plot, **ui_only)
    ui.audit_run.click(sycophancy, [ui.case_source, ui.case_n, ui.threshold, ui.models, ui.case_file, session],
                       [ui.audit_summary, ui.audit_plot, ui.audit_cases], api_name="sycophancy_audit",
                       **HEAVY_CONCURRENCY)
    ui.cf_run.click(counterfactual, [ui.cf_source, ui.cf_max, ui.models, ui.audit_file, session],
                    [ui.cf_plot, ui.cf_table], api_name="counterfactual", **HEAVY_CONCURRENCY)
    ui.rel_run.click(reliability, [ui.rel_source, ui.models, ui.audit_file, session], ui.rel_plot,
                     api_name="reliability", **HEAVY_CONCURRENCY)
    ui.train.click(train_rm, [ui.train_source, ui.train_file, ui.train_hub, ui.backbone, ui.train_name, ui.epochs,
                              ui.ensemble, ui.max_pairs, ui.batch_size, ui.lr, ui.train_run, session],
                   [ui.train_status, ui.train_plot, *selectors], api_name="train", **HEAVY_CONCURRENCY)
    ui.stop_train.click(stop_training, [ui.train_run, session], ui.train_status, api_name="stop_training")
    ui.compare_run.click(compare, [ui.compare_a, ui.compare_b, ui.compare_pairs, ui.compare_cases,
                                   ui.compare_file, session], ui.compare_table, api_name="compare",
                         **HEAVY_CONCURRENCY)
    ui.loop_run.click(enqueue, [ui.loop_prompts, ui.loop_tokens, ui.loop_temperature, ui.policy, session],
                      ui.loop_status, api_name="enqueue_policy_pairs", **HEAVY_CONCURRENCY)
    g.run.click(goodhart, [g.gold, g.ensemble, g.prompts, g.n_prompts, g.n, g.max_new_tokens, g.lam, g.beta_kl,
                           ui.policy, ui.models, session], [g.summary, g.plot, g.fits], api_name="goodhart",
                **HEAVY_CONCURRENCY)
    gr.api(score, api_name="score", **SCORE_CONCURRENCY)


# ----------------------------------------------------------------------------- the app


def build_ui(store: Store, access: Access | None = None, title: str = "Reward-model lab",
             runs: str | Path | None = None) -> gr.Blocks:
    """The whole app on `store`; `access` defaults to the roles set in the environment, `runs`
    (checkpoints, training data, sample caches) to env RMLAB_RUNS, else runs/."""
    access = Access.from_env() if access is None else access
    with gr.Blocks(title=title) as demo:
        # a local run (no roles configured) is a researcher before signing in
        session = gr.State(Session(researcher=access.open))
        gr.Markdown(f"## {title}")
        with gr.Tabs():
            with gr.Tab("Label", id="label"):
                label = build_label_tab(access)
            with gr.Tab("Dashboard", id="dashboard", visible=access.open) as dash_tab:
                dash = build_dashboard_tab()
            with gr.Tab("Research", id="research", visible=access.open) as research_tab:
                build_research_tab(store, access, session, resolve_runs(runs))

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
        server_name=host, server_port=port, share=share, css=CSS + RESEARCH_CSS, head=page_head(),
        theme=gr.themes.Soft(), footer_links=["api"], **kwargs)


def parse_args(argv: list[str] | None = None, env: dict[str, str] | None = None) -> argparse.Namespace:
    """The app's options. Host and port default to env GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
    (Hugging Face Spaces sets them), else 127.0.0.1:7860; --db and --runs left out (None) fall
    back to env RMLAB_DB / RMLAB_RUNS in open_store / resolve_runs."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description="The reward-model lab web app.")
    parser.add_argument("--host", default=env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                        help="address to serve on (default: env GRADIO_SERVER_NAME, else 127.0.0.1)")
    # a string default goes through type=int too, so a bad env value is reported like a bad --port
    parser.add_argument("--port", type=int, default=env.get("GRADIO_SERVER_PORT") or "7860",
                        help="port (default: env GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--db", default=None,
                        help="SQLite path or database URL (default: env RMLAB_DB, else runs/labels.db)")
    parser.add_argument("--share", action="store_true", help="also serve through a gradio.live link")
    parser.add_argument("--runs", default=None,
                        help="folder of checkpoints, training data and sample caches (default: env RMLAB_RUNS, else runs/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    store = open_store(args.db)
    store.ensure_seeded()
    launch(build_ui(store, runs=args.runs), host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
