"""The application context every handler is bound to, and `bind`, which binds it.

Handlers are module-level functions `handler(app, tab, *inputs)`: `app` is this context,
`tab` the dataclass of the tab's components (the keys of the dict a handler returns). A test
calls a handler directly; `wire` connects `bind(handler, app, tab)` to an event.
"""
from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from labeling.store import Store
from ui.auth import Access

RUNS_ENV = "RMLAB_RUNS"
# Event queues: live scoring may run two at a time; training, the policy LM and audits one.
SCORE_CONCURRENCY = {"concurrency_id": "rm-score", "concurrency_limit": 2}
HEAVY_CONCURRENCY = {"concurrency_id": "rm-heavy", "concurrency_limit": 1}
UI_ONLY = {"api_visibility": "private"}  # events that are not part of the public API
FILE_TYPES = [".jsonl", ".json", ".csv", ".parquet"]


def resolve_runs(runs: str | Path | None = None) -> Path:
    """The run folder: the argument, else env RMLAB_RUNS, else rm.defaults.RUNS (runs/)."""
    from rm.defaults import RUNS

    return Path(runs or os.environ.get(RUNS_ENV) or RUNS)


@dataclass(frozen=True)
class App:
    """What the handlers share: the label store, who may do what, and the run folder
    (checkpoints, training data, sample caches). Per-user state lives in gr.State instead."""

    store: Store
    access: Access = field(default_factory=Access.from_env)
    runs: Path = field(default_factory=resolve_runs)
    title: str = "Reward-model lab"


@dataclass(frozen=True)
class Shell:
    """The page around the tabs: the per-session state and the tabs only researchers see."""

    page: gr.Blocks
    session: gr.State
    researcher_tabs: tuple[gr.Tab, ...] = ()


def collect_js(names: list[str]) -> str:
    """Browser-side js for an event with fn=None: its inputs' values -> one dict keyed by
    `names`, for a hidden gr.JSON that a public endpoint takes as named options."""
    import json

    return f"(...values) => [Object.fromEntries({json.dumps(names)}.map((k, i) => [k, values[i]]))]"


def bind(handler, *bound):
    """`handler` with its first arguments fixed, keeping the rest of its signature and its type
    hints (functools.partial hides them, and Gradio reads them to pass gr.Request, gr.Progress
    and the OAuth profile). Generator handlers stay generators, so Gradio streams them."""
    signature = inspect.signature(handler)
    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def call(*args, **kwargs):
            yield from handler(*bound, *args, **kwargs)
    else:
        @functools.wraps(handler)
        def call(*args, **kwargs):
            return handler(*bound, *args, **kwargs)
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(bound):])
    return call
