"""Regenerate the app screenshots in docs/ (labeling.png, dashboard.png, probe.png, audit.png).

    .venv/bin/python docs/make_screenshots.py [--out docs] [--rm CHECKPOINT]

Runs the app on a throwaway store seeded with the project's seed tasks, lets three simulated
annotators label through the store so the dashboard has numbers, then drives Chromium
(env RMLAB_CHROMIUM, else /usr/bin/chromium) through sign-in and the dashboard. For the
research views it trains the default MiniLM on the seed tasks' known preferences (a minute or
two on CPU; `--rm` reuses a checkpoint instead) into a throwaway run folder, then shows the
probe on an arithmetic agreement case and the audits (sycophancy on generated arithmetic
cases, counterfactual probes, reliability diagram).
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

from labeling.export import known_preferences  # noqa: E402
from labeling.store import StoreConfig, open_store  # noqa: E402
from ui import build_ui, launch  # noqa: E402
from ui.auth import Access  # noqa: E402
from ui.context import App  # noqa: E402

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
    parser.add_argument("--rm", default=None, help="checkpoint for the research views (default: train one)")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "labels.db", StoreConfig(seed=1))
        store.ensure_seeded()
        simulate(store, {"bob": 0.45, "chen": 0.6, "dana": 0.75}, n=40)
        runs = Path(tmp) / "runs"
        seed_rm(store, runs, args.rm)
        demo = build_ui(App(store, Access(), runs))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch(demo, port=port, prevent_thread_lock=True, quiet=True)
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
            research_screenshots(page, expect, Path(args.out))
            browser.close()
        demo.close()
        store.close()
    for name in ("labeling.png", "dashboard.png", "probe.png", "audit.png"):
        shrink(Path(args.out) / name)


def seed_rm(store, runs: Path, checkpoint: str | None) -> None:
    """runs/rm/minilm-seed: a copy of `checkpoint`, or MiniLM trained on the known preferences."""
    import shutil

    from rm.train import TrainConfig, train

    out = runs / "rm" / "minilm-seed"
    if checkpoint:
        shutil.copytree(checkpoint, out)
        return
    data = runs / "datasets" / "seed.jsonl"
    data.parent.mkdir(parents=True)
    known_preferences(store.tasks()).to_json(data, force_ascii=False)  # JSON lines
    train(TrainConfig(data=str(data), out=str(out), epochs=3, batch_size=8, eval_fraction=0.2, progress=False))
    if os.environ.get("RMLAB_KEEP_RM"):  # reuse on the next run with --rm
        shutil.copytree(out, os.environ["RMLAB_KEEP_RM"], dirs_exist_ok=True)


def research_screenshots(page, expect, out: Path) -> None:
    """probe.png: an arithmetic agreement case in the probe; audit.png: the three audits."""
    page.get_by_role("tab", name="Research").click()
    page.locator("#rm-fill-task input").click()
    page.get_by_role("option", name="7 × 8 = 54").first.click()
    expect(page.locator("#rm-probe-card")).to_contain_text("Reward A")
    page.mouse.move(0, 0)
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "probe.png"), full_page=True)
    page.get_by_role("tab", name="Audits").click()
    page.get_by_label("arithmetic generator").first.check()
    page.locator("#rm-audit-run").click()
    expect(page.locator("#rm-audit-summary")).to_contain_text("cases", timeout=120_000)
    page.locator("#rm-cf-run").click()
    expect(page.locator("#rm-cf-plot img")).to_be_visible(timeout=300_000)
    page.locator("#rm-rel-run").click()
    expect(page.locator("#rm-rel-plot img")).to_be_visible(timeout=120_000)
    page.mouse.move(0, 0)
    page.wait_for_timeout(1500)  # plots render
    page.screenshot(path=str(out / "audit.png"), full_page=True)


def shrink(path: Path) -> None:
    """256-colour PNG: about a third of the size, text stays crisp."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


if __name__ == "__main__":
    main()
