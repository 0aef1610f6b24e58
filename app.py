"""Reward-model lab web app: annotators label response pairs, researchers watch and export.

    python app.py [--host 127.0.0.1] [--port 7860] [--db URL_OR_PATH] [--runs DIR] [--share]

The UI is the `ui` package; this file only parses arguments, opens the store (restoring it
from the Hub when RMLAB_HUB_DATASET is set), seeds it, and launches the UI.
"""
from __future__ import annotations

import argparse
import os

from labeling import hub_sync
from labeling.cli import run_cli
from labeling.store import open_store
from ui import build_ui, launch
from ui.context import App, resolve_runs


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
    store, runs = open_store(args.db), resolve_runs(args.runs)
    hub_sync.attach(store, runs)  # restores an empty store from RMLAB_HUB_DATASET, then logs every change
    store.ensure_seeded()
    launch(build_ui(App(store, runs=runs)), host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":  # a bad setting (RMLAB_SIGNIN, RMLAB_HUB_*, --db) is one error line, exit 2
    raise SystemExit(run_cli(main))
