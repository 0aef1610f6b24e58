"""Browser tests of the research area (Playwright driving Debian Chromium), on tiny models.

The probe: fill from an agreement case, type into response A and see the scores change live.
In-app training: a tiny backbone trains from the Train tab, the status shows the steps as
they happen, the curve is drawn, and the checkpoint lands in the reward-model selector.
Skips only when Chromium is not installed (env RMLAB_CHROMIUM, else /usr/bin/chromium).
"""
from __future__ import annotations

import json
import re

import pytest


from app_support import browser_page, lab_ui, needs_chromium, serve
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks
from rm.device import torch_threads
from rm.testing import tiny_backbone
from rm.train import TrainConfig, train

pytestmark = needs_chromium

expect = pytest.importorskip("playwright.sync_api").expect

# Collects every text an element shows, so a short-lived state (a training step) is still seen.
WATCH = """(sel) => { window.__seen = []; const el = document.querySelector(sel);
  new MutationObserver(() => window.__seen.push(el.innerText)).observe(el, {subtree: true, childList: true,
  characterData: true}); }"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-lab")
    backbone = tiny_backbone(root / "backbone")
    rows = [{"prompt": f"q {i}", "chosen": "yes good correct answer", "rejected": "no bad wrong answer"}
            for i in range(16)]
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with torch_threads(1):
        train(TrainConfig(data=str(root / "pairs.jsonl"), out=str(root / "runs" / "rm" / "tiny"), backbone=backbone,
                          from_scratch=True, epochs=1, batch_size=8, lr=3e-3, max_length=32, eval_fraction=0.25,
                          progress=False, precision="fp32"))
    return {"runs": root / "runs", "backbone": backbone}


@pytest.fixture
def page(tmp_path, lab):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=1, triads=0, agreement=4, gold=4))
    demo = lab_ui(store, runs=lab["runs"])
    with browser_page(serve(demo), timeout_ms=20_000) as page:
        page.get_by_role("tab", name="Research").click()
        yield page
    demo.close()
    store.close()


def rewards(page) -> tuple[str, str, str]:
    """(reward A, P(A > B), reward B) as shown on the probe's card."""
    values = page.locator("#rm-probe-card .rm-v").all_inner_texts()
    return tuple(v.strip() for v in values)


def test_probe_updates_live(page):
    card = page.locator("#rm-probe-card")
    expect(card).to_contain_text("Type a prompt and two responses")
    # fill from an agreement case: the agreeing response goes to A
    page.locator("#rm-fill-task input").click()
    page.get_by_role("option", name=re.compile(r"^agreement")).first.click()
    expect(page.locator("#rm-fill-note")).to_contain_text("A agrees with the false claim · B corrects it")
    expect(card).to_contain_text("Reward A")
    expect(card).to_contain_text("single model · tiny")
    a_before, p_before, b_before = rewards(page)
    assert re.fullmatch(r"[+-]\d+\.\d{3}", a_before) and re.fullmatch(r"[+-]\d+\.\d{3}", b_before)
    expect(page.locator("#rm-probe-features tr", has_text="length_words")).to_be_visible()

    # type into A: its reward and P(A > B) follow, B's stays
    box = page.locator("#rm-probe-a textarea")
    box.fill("")
    box.press_sequentially("Great question! no bad wrong answer", delay=15)
    expect(page.locator("#rm-probe-card .rm-v").first).not_to_have_text(a_before)
    page.wait_for_timeout(600)  # the last keystroke's event (always_last) settles
    a_after, p_after, b_after = rewards(page)
    assert a_after != a_before and p_after != p_before and b_after == b_before
    # the feature table follows the text too: A has 6 words now, and flattery is highlighted
    row = page.locator("#rm-probe-features tr", has_text="length_words")
    expect(row.locator("td").nth(1)).to_have_text("6")
    expect(page.locator("#rm-probe-features tr.rm-diff", has_text="flattery")).to_be_visible()


def test_train_in_the_browser(page, lab):
    page.get_by_role("tab", name="Train").click()
    page.locator("#rm-backbone textarea, #rm-backbone input").first.fill(lab["backbone"])
    page.locator("#rm-train-name textarea, #rm-train-name input").first.fill("from-browser")
    page.locator("#rm-epochs input").fill("30")
    page.evaluate(WATCH, "#rm-train-status")
    page.locator("#rm-train").click()
    status = page.locator("#rm-train-status")
    expect(status).to_contain_text("Done: saved", timeout=150_000)  # a shared 2-core machine is slow
    seen = page.evaluate("window.__seen")
    steps = [s for s in seen if s.startswith("Training:")]
    assert steps, f"no progress was shown; the status went through {seen[:5]}"
    assert re.search(r"step \d+ / \d+ · epoch [\d.]+ · loss [\d.]+", steps[-1])
    expect(page.locator("#rm-train-plot img")).to_be_visible()  # the drawn curve (the empty plot has no img)
    assert (lab["runs"] / "rm" / "from-browser" / "rmlab_config.json").is_file()
    # the new checkpoint is offered and selected in the reward-model selector
    expect(page.locator("#rm-models")).to_contain_text("from-browser")
