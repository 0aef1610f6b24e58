"""The one way a library's refusal reaches the user: `with shown("What failed"):` turns
ValueError, LookupError, OSError and PermissionError into `gr.Error("What failed: why.")`.
Anything else is a bug and keeps its traceback."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

REFUSALS = (ValueError, LookupError, OSError, PermissionError)


@contextmanager
def shown(what: str, *also: type[Exception]) -> Iterator[None]:
    """`also`: more exception types that are refusals here (e.g. TypeError from a config's
    did-you-mean check)."""
    try:
        yield
    except gr.Error:
        raise
    except (*REFUSALS, *also) as err:
        reason = str(err).rstrip(".") or type(err).__name__
        raise gr.Error(f"{what}: {reason}.") from err
