"""Regenerate the app screenshots in docs/ (labeling.png, dashboard.png).

    .venv/bin/python docs/make_screenshots.py [--out docs]

Runs the app on a throwaway store seeded with the project's seed tasks, lets three simulated
annotators label through the store so the dashboard has numbers, then drives Chromium
(env RMLAB_CHROMIUM, else /usr/bin/chromium) through sign-in and the dashboard.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app  # noqa: E402
from labeling.store import StoreConfig, open_store  # noqa: E402

CHROMIUM = os.environ.get("RMLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def simulate(store, annotators: dict[str, float], n: int, seed: int = 0) -> None:
    """Each annotator labels n tasks; the value is how often they pick the left response."""
    rng = random.Random(seed)
    for name, p_left in annotators.items():
        for _ in range(n):
            assignment = store.next_assignment(name)
            if assignment is None:
                break
            choice = rng.choices(["left", "right", "tie"], [p_left, 0.9 - p_left, 0.1])[0]
            store.submit(assignment.id, name, choice, rng.choice([1, 2, 2, 3]),
                         seconds=rng.uniform(8, 70))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "labels.db", StoreConfig(seed=1))
        store.ensure_seeded()
        simulate(store, {"bob": 0.45, "chen": 0.6, "dana": 0.75}, n=40)
        demo = app.build_ui(store, app.Access())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.goto(demo.local_url)
            page.locator("#rm-name input").fill("alice")
            page.locator("#rm-signin").click()
            expect(page.locator("#rm-left .rm-text")).to_be_visible()
            page.locator("#rm-tags").get_by_label("hedges", exact=True).check()
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)  # transitions settle
            page.screenshot(path=str(Path(args.out) / "labeling.png"), full_page=True)
            page.get_by_role("tab", name="Dashboard").click()
            expect(page.locator("#rm-summary")).to_contain_text("labels")
            page.wait_for_timeout(1500)  # plots render
            page.screenshot(path=str(Path(args.out) / "dashboard.png"), full_page=True)
            browser.close()
        demo.close()
        store.close()
    for name in ("labeling.png", "dashboard.png"):
        shrink(Path(args.out) / name)


def shrink(path: Path) -> None:
    """256-colour PNG: about a third of the size, text stays crisp."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


if __name__ == "__main__":
    main()
