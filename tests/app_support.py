"""Helpers shared by the app tests: serve a UI on a free local port (in this process, or as an
`app.py` subprocess), call its endpoints over HTTP, and drive it with Chromium.

Browser tests skip only when Chromium is not installed (env RMLAB_CHROMIUM, else
/usr/bin/chromium): mark the module with `pytestmark = needs_chromium`.
"""
import json
import os
import socket
import subprocess
import sys
import time
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


@contextmanager
def app_process(*args: str, log: Path, env: dict[str, str] | None = None,
                timeout: float = 240) -> Iterator[str]:
    """`python app.py ARGS --port <free port>` in a subprocess; yields its base URL once it answers.

    Its output goes to `log` (shown when it fails to start); it is terminated on exit."""
    with app_server(*args, log=log, env=env, timeout=timeout) as (_, base):
        yield base


@contextmanager
def app_server(*args: str, log: Path, env: dict[str, str] | None = None,
               timeout: float = 240) -> Iterator[tuple[subprocess.Popen, str]]:
    """As `app_process`, but yields (the process, its base URL), for a test that kills it."""
    import httpx

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", *args, "--port", str(port)], cwd=root,
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app.py {' '.join(args)} did not start:\n{Path(log).read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/gradio_api/info", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield proc, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ApiError(RuntimeError):
    """The endpoint answered `event: error` (e.g. a gr.Error); the message is the app's."""


def call_api(client, base: str, name: str, *data, headers: dict | None = None):
    """Call a named endpoint over plain HTTP with Gradio's two-step protocol: POST
    /gradio_api/call/NAME {"data": [...]} returns an event id, then GET
    /gradio_api/call/NAME/ID streams Server-Sent Events ending in `complete` (data: the outputs)
    or `error`. Returns the first output. `client` is an httpx.Client; `headers` go with the POST
    (e.g. X-RMLab-Invite)."""
    posted = client.post(f"{base}/gradio_api/call/{name}", json={"data": list(data)}, headers=headers)
    posted.raise_for_status()
    event = None
    with client.stream("GET", f"{base}/gradio_api/call/{name}/{posted.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                if event == "error":
                    raise ApiError((payload or {}).get("error") or "the endpoint failed")
                return payload[0]
    raise ApiError(f"{name}: the stream ended without a result")
