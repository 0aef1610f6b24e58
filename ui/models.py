"""The research area's shared header: which reward model(s) and which policy LM the tabs use,
the loaded-model cache, and the newcomer's path when no reward model exists yet (one click
trains a starter RM on the tasks' known preferences and selects it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import gradio as gr

from rm.checkpoint import list_checkpoints
from ui.auth import Access, Session, require_researcher
from ui.context import HEAVY_CONCURRENCY, UI_ONLY, App, bind
from ui.errors import shown

NO_MODEL = ("**No reward model yet.** The probe, audits and Goodhart curves need one. Train a starter "
            "RM on the tasks' known preferences (about 5 s on a laptop), or train your own in the "
            "Train tab.")
STARTER = "starter"


@dataclass
class Selector:
    models: gr.Dropdown
    refresh: gr.Button
    notice: gr.Row  # the "no reward model yet" note and its starter button
    starter: gr.Button
    policy: gr.Textbox
    # every dropdown that lists checkpoints, with the choices it shows before them
    lists: list[tuple[gr.Dropdown, list]] = field(default_factory=list)


def build(app: App) -> Selector:
    checkpoints = list_checkpoints(app.runs)
    with gr.Row(equal_height=True):
        models = gr.Dropdown(checkpoints, value=[checkpoints[0][1]] if checkpoints else [], multiselect=True,
                             allow_custom_value=True, scale=5, elem_id="rm-models",
                             label="Reward model (pick several for an ensemble; or type a folder or Hub id)")
        refresh = gr.Button("↻ Refresh list", scale=0, min_width=130, elem_id="rm-refresh-models")
    with gr.Row(equal_height=True, visible=not checkpoints) as notice_row:
        gr.Markdown(NO_MODEL, elem_id="rm-no-model")
        starter = gr.Button("Train a starter RM", variant="primary", scale=0, min_width=200,
                            elem_id="rm-starter")
    with gr.Accordion("Policy LM", open=False):
        policy = gr.Textbox(label="Policy LM (empty: the offline SmolLM2-135M-Instruct; any causal LM folder, "
                                  ".gguf path or Hub id). Drafts probe responses, samples new pair tasks and "
                                  "Goodhart curves.", elem_id="rm-policy")
    selector = Selector(models, refresh, notice_row, starter, policy)
    selector.lists.append((models, []))
    return selector


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
                       "type a folder or Hub id, or train one (Train a starter RM, or the Train tab).")
    with shown(f"Could not load the reward model {' + '.join(sources)} (choose a checkpoint from the "
               "list, or give a reward-model folder or Hugging Face id)"):
        return _load_scorer(sources, tuple(_stamp(s) for s in sources))


def selected_models(selection: list[str] | str | None) -> list[str]:
    """The selector's value (or an API string, several joined by ',') -> model sources."""
    items = selection.split(",") if isinstance(selection, str) else list(selection or [])
    return [s.strip() for s in items if s and s.strip()]


def model_sources(selection: list[str] | str | None, runs: Path) -> list[str]:
    """Selected models as loadable sources: a checkpoint name in runs/rm becomes its folder."""
    known = dict(list_checkpoints(runs))
    return [known.get(name, name) for name in selected_models(selection)]


def api_models(model: str, access: Access, runs: Path) -> list[str]:
    """Sources for the public `score` endpoint.

    Empty: the newest checkpoint in the run folder. A checkpoint name in runs/rm: that folder.
    Any other path or Hub id only on an open (local) run: a public caller must not make the
    server load arbitrary files or download models.
    """
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


def choices(app: App, selector: Selector, select: str | None = None) -> dict:
    """Fresh checkpoint lists for every selector; `select` a new checkpoint in the main one."""
    found = list_checkpoints(app.runs)
    out = {dropdown: gr.Dropdown(choices=[*extra, *found]) for dropdown, extra in selector.lists}
    if select:
        out[selector.models] = gr.Dropdown(choices=found, value=[select], multiselect=True)
    return out | {selector.notice: gr.Row(visible=not found)}


def refresh(app: App, selector: Selector, sess: Session) -> dict:
    require_researcher(sess)
    return choices(app, selector)


def train_starter(app: App, selector: Selector, sess: Session, progress=gr.Progress()) -> dict:
    """Train a small RM on the tasks' known preferences (gold and agreement tasks) and select it."""
    from analysis.sources import known_pairs
    from rm.background import write_pairs
    from rm.train import TrainConfig, train

    require_researcher(sess)
    progress(0.1, desc="Training a starter RM on the known preferences")
    with shown("The starter RM could not be trained"):
        data = write_pairs(known_pairs(app.store), app.runs / "datasets" / f"{STARTER}.jsonl")
        path = train(TrainConfig(data=data, out=str(app.runs / "rm" / STARTER), epochs=2, eval_fraction=0.2,
                                 progress=False))
    return choices(app, selector, select=str(path))


def wire(app: App, selector: Selector, session: gr.State) -> None:
    outputs = [dropdown for dropdown, _ in selector.lists] + [selector.notice]
    selector.refresh.click(bind(refresh, app, selector), session, outputs, **UI_ONLY)
    selector.starter.click(bind(train_starter, app, selector), session, outputs, api_name="train_starter",
                           **HEAVY_CONCURRENCY)
