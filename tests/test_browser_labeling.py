"""Browser test: an annotator labels through the real UI (Playwright driving Debian Chromium).

Covers sign-in, a triad's pairings, an agreement case, keyboard shortcuts (and that they
stay quiet while typing), strength and tags, undo, skip; then checks the store and the
dashboard. Skips only when Chromium is not installed (env RMLAB_CHROMIUM, else
/usr/bin/chromium).
"""
from __future__ import annotations

import pytest


from app_support import browser_page, lab_ui, needs_chromium, serve
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks

pytestmark = needs_chromium

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    # 2 pairs + 1 agreement + a triad's 3 pairings = 6 assignments
    store.import_tasks(tiny_tasks(pairs=2, triads=1, agreement=1, gold=0))
    yield store
    store.close()


@pytest.fixture
def page(store):
    demo = lab_ui(store)
    with browser_page(serve(demo)) as page:
        yield page
    demo.close()


def shown(page) -> tuple[str, str, str]:
    """(prompt, left, right) texts of the task on screen."""
    text = lambda sel: page.locator(f"{sel} .rm-text").inner_text().strip()
    return text("#rm-prompt"), text("#rm-left"), text("#rm-right")


def wait_done(page, n: int) -> None:
    expect(page.locator("#rm-status")).to_contain_text(f"{n} labelled")


def test_label_through_the_ui(page, store):
    page.locator("#rm-name input").fill("alice")
    page.locator("#rm-signin").click()
    wait_done(page, 0)
    expect(page.locator("#rm-left .rm-text")).to_be_visible()

    # 1: click a choice with a stronger strength and a tag
    first = shown(page)
    page.locator("#rm-strength").get_by_label("much", exact=True).check()
    page.locator("#rm-tags").get_by_label("too long", exact=True).check()
    page.locator("#rm-choice-B").click()
    wait_done(page, 1)

    # typing digits and letters in the rationale must not fire the shortcuts
    page.locator("#rm-rationale textarea").fill("")
    page.locator("#rm-rationale textarea").press_sequentially("1 2 a b s u t x")
    page.wait_for_timeout(400)
    wait_done(page, 1)
    assert store.labels().shape[0] == 1

    # 2: keyboard shortcut (focus off the text box first)
    page.locator("#rm-status").click()
    second = shown(page)
    page.keyboard.press("1")
    wait_done(page, 2)

    # undo brings the second task back; label it again with the keyboard
    page.keyboard.press("u")
    wait_done(page, 1)
    assert shown(page) == second
    page.keyboard.press("3")  # tie
    wait_done(page, 2)

    # label the rest, skipping one plain pair; in the agreement case pick the correcting response
    done, skipped = 2, False
    while page.locator("#rm-choice-A").is_visible():
        prompt, left, right = shown(page)
        if prompt.startswith("pair") and not skipped:
            page.keyboard.press("s")
            skipped = True
            expect(page.locator("#rm-prompt .rm-text")).not_to_have_text(prompt)
            continue
        agreement = prompt.startswith("I'm sure")
        corrects_left = left.endswith("response b")  # tiny_tasks: agreement-0 response a agrees
        page.locator("#rm-choice-B" if agreement and not corrects_left else "#rm-choice-A").click()
        done += 1
        wait_done(page, done)
    assert skipped

    labels = store.labels()
    assert len(labels) == done >= 5
    # the first label: B (right) much better, tagged
    row = labels.iloc[0]
    assert (row.prompt, row.left, row.right) == first
    assert (row.choice, row.strength, list(row.tags)) == ("right", 3, ["too long"])
    assert row.chosen == first[2]
    assert labels.iloc[1].choice == "tie"
    # shown order is recorded as the letters of what was on the left and right
    assert set(labels.shown_order) <= {"ab", "ba", "bc", "cb", "ca", "ac"}
    assert all(r.left == r.chosen or r.right == r.chosen for r in labels.itertuples())
    # a triad's pairings and the agreement case were labelled; the correcting response won
    assert (labels.task_kind == "triad").sum() >= 2
    agreement = labels[labels.task_kind == "agreement"].iloc[0]
    assert agreement.winner == 1 - agreement.agreeing
    assert (labels.seconds > 0).all()

    # the dashboard shows the same counts
    page.get_by_role("tab", name="Dashboard").click()
    expect(page.locator("#rm-summary")).to_contain_text(f"{done} labels")
    expect(page.locator("#rm-per-annotator")).to_contain_text("alice")
