"""The Probe tab: a prompt and two responses, scored live as you type (both rewards, the
calibrated P(A > B), the ensemble's spread) beside their style features; fill it from a task
or draft an agreeing and a correcting response with the policy LM."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from analysis.compare import feature_diff, score_pair
from analysis.sources import probe_texts, task_choices
from ui.auth import Session, require_researcher
from ui.context import HEAVY_CONCURRENCY, SCORE_CONCURRENCY, UI_ONLY, App, bind
from ui.errors import shown
from ui.models import Selector, api_models, cached_scorer, model_sources
from ui.render import feature_html, score_card

EMPTY = "Type a prompt and two responses."


@dataclass
class ProbeTab:
    fill_task: gr.Dropdown
    shuffle: gr.Checkbox
    draft: gr.Button
    fill_note: gr.Markdown
    prompt: gr.Textbox
    response_a: gr.Textbox
    response_b: gr.Textbox
    card: gr.HTML
    features: gr.HTML


def build(app: App) -> ProbeTab:
    with gr.Row(equal_height=True):
        fill_task = gr.Dropdown(task_choices(app.store), value=None, label="Fill from a task", scale=4,
                                elem_id="rm-fill-task")
        shuffle = gr.Checkbox(False, label="Shuffle A/B", scale=1, min_width=120)
        draft = gr.Button("Draft with the policy", scale=1, min_width=170, elem_id="rm-draft")
    fill_note = gr.Markdown(elem_id="rm-fill-note")
    prompt = gr.Textbox(label="Prompt", lines=2, max_lines=6, elem_id="rm-probe-prompt")
    with gr.Row():
        response_a = gr.Textbox(label="Response A", lines=5, max_lines=14, elem_id="rm-probe-a")
        response_b = gr.Textbox(label="Response B", lines=5, max_lines=14, elem_id="rm-probe-b")
    card = gr.HTML(score_card(None, EMPTY), elem_id="rm-probe-card")
    features = gr.HTML(elem_id="rm-probe-features")
    return ProbeTab(fill_task, shuffle, draft, fill_note, prompt, response_a, response_b, card, features)


def probe(app: App, tab: ProbeTab, prompt: str, response_a: str, response_b: str, models: list[str],
          sess: Session) -> dict:
    require_researcher(sess)
    if not (response_a or response_b):
        return {tab.card: score_card(None, EMPTY), tab.features: ""}
    try:  # live view: a problem is shown in the card, not raised on every keystroke
        card = score_card(score_pair(cached_scorer(model_sources(models, app.runs)), prompt, response_a, response_b))
    except gr.Error as err:
        card = score_card(None, err.message)
    return {tab.card: card, tab.features: feature_html(feature_diff(prompt, response_a, response_b))}


def fill(app: App, tab: ProbeTab, task_id: str | None, shuffle: bool, sess: Session) -> dict:
    require_researcher(sess)
    task = next((t for t in app.store.tasks() if t.id == task_id), None)
    if task is None:
        return {tab.fill_note: gr.skip()}
    prompt, a, b, note = probe_texts(task, shuffle, np.random.default_rng())
    return {tab.prompt: prompt, tab.response_a: a, tab.response_b: b, tab.fill_note: note}


def load_policy_lm(spec: str | None):
    """The policy LM (analysis.policy, cached there); empty spec = the offline SmolLM2."""
    from analysis import policy

    with shown("Could not load the policy LM"):
        return policy.load_policy((spec or "").strip() or None)


def draft(app: App, tab: ProbeTab, prompt: str, policy_spec: str, sess: Session, progress=gr.Progress()) -> dict:
    from analysis.policy import draft_agreeing_and_correcting

    require_researcher(sess)
    if not (prompt or "").strip():
        raise gr.Error("Type a prompt first (e.g. a false claim such as 'I'm sure 7 × 8 = 54'), then draft.")
    progress(0.05, desc="Loading the policy LM")
    policy = load_policy_lm(policy_spec)
    progress(0.3, desc="Drafting an agreeing and a correcting response")
    drafts = draft_agreeing_and_correcting(prompt, policy)
    return {tab.response_a: drafts["agreeing"], tab.response_b: drafts["correcting"],
            tab.fill_note: f"Drafted by {policy.name}: A steered to agree, B steered to correct."}


def score(app: App, prompt: str, response_a: str, response_b: str, model: str = "") -> dict:
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
    return score_pair(cached_scorer(api_models(model, app.access, app.runs)), prompt, response_a, response_b)


def wire(app: App, tab: ProbeTab, selector: Selector, session: gr.State) -> None:
    gr.on([tab.prompt.change, tab.response_a.change, tab.response_b.change, selector.models.change],
          bind(probe, app, tab), [tab.prompt, tab.response_a, tab.response_b, selector.models, session],
          [tab.card, tab.features], trigger_mode="always_last", show_progress="hidden", **UI_ONLY,
          **SCORE_CONCURRENCY)
    gr.on([tab.fill_task.select, tab.shuffle.input], bind(fill, app, tab), [tab.fill_task, tab.shuffle, session],
          [tab.prompt, tab.response_a, tab.response_b, tab.fill_note], **UI_ONLY)
    tab.draft.click(bind(draft, app, tab), [tab.prompt, selector.policy, session],
                    [tab.response_a, tab.response_b, tab.fill_note], **UI_ONLY, **HEAVY_CONCURRENCY)
    gr.api(bind(score, app), api_name="score", **SCORE_CONCURRENCY)
