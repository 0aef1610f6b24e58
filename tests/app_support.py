"""Helpers shared by the app tests: serve a UI on a free local port, and drive it with Chromium.

Browser tests skip only when Chromium is not installed (env RMLAB_CHROMIUM, else
/usr/bin/chromium): mark the module with `pytestmark = needs_chromium`.
"""
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ui import build_ui, launch
from ui.auth import Access
from ui.context import App

CHROMIUM = os.environ.get("RMLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_ui(store, access: Access | None = None, runs=None):
    """The whole UI on `store` (default access: a local run, everyone a researcher)."""
    kwargs = {} if runs is None else {"runs": Path(runs)}
    return build_ui(App(store, access or Access(), **kwargs))


def serve(demo) -> str:
    """Launch `demo` with the app's settings on a free port without blocking; its local URL.
    The caller closes it (`demo.close()`)."""
    launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo.local_url


@contextmanager
def browser_page(url: str, timeout_ms: int = 15_000) -> Iterator:
    """A Playwright page in headless Chromium, opened at `url`; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        yield page
        browser.close()
