"""Browser test: HTML and JavaScript in every text the app shows stays inert (Playwright
driving Debian Chromium).

Tasks whose prompts, responses and categories carry script payloads, annotators and invites
whose names do, and a rationale that does, go through the real UI: the Label tab, the
Dashboard (annotator names, invites) and the Probe (task texts fill its text boxes; the
features table). Every payload calls `__xss.push(...)` or `alert(...)`; the page records
both, and neither may ever fire. Where a payload is plain text to Markdown, it must be shown
literally. Skips only when Chromium is not installed (env RMLAB_CHROMIUM, else /usr/bin/chromium).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest

from app_support import browser_page, lab_ui, needs_chromium, serve
from labeling.store import StoreConfig, open_store
from labeling.tasks import Task
from ui.auth import Access

pytestmark = needs_chromium

expect = pytest.importorskip("playwright.sync_api").expect

# Markdown leaves these as text: the page must show them character for character.
LITERAL = [
    "<script>__xss.push('script');alert('script')</script>",
    "<img src=x onerror=\"__xss.push('img');alert('img')\">",
    "<svg onload=\"__xss.push('svg')\"><circle r=5></svg>",
    "<iframe srcdoc=\"<script>parent.__xss.push('iframe')</script>\"></iframe>",
    "<a href=\"javascript:__xss.push('a')\">click me</a>",
    "</div></div><script>__xss.push('breakout')</script><div>",
    "\"><img src=x onerror=__xss.push('attr')>",
    "<details open ontoggle=__xss.push('details')>x</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=__xss.push('mxss')>",
    "[click me](javascript:__xss.push('md-link'))",
    "<javascript:__xss.push('autolink')>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "{{constructor.constructor('__xss.push(1)')()}}",
]
# Markdown that would build an element: it must not survive as one.
MARKUP = [
    "![tracker](https://evil.example/pixel.png)",
    "![x](x\" onerror=\"__xss.push('md-img'))",
    "[ok](https://example.org \"title\\\" onmouseover=\\\"__xss.push('title')\")",
    "&lt;img src=x onerror=__xss.push('entity')&gt;",
]
NAMES = ["<img src=x onerror=__xss.push('name')>", "**bold** [x](javascript:__xss.push('n2'))",
         "\"><svg onload=__xss.push('n3')>"]
RATIONALE = "<script>__xss.push('rationale')</script> because </textarea><img src=x onerror=alert(1)>"
HOOKS = "window.__xss = []; window.__requests = [];"  # runs before the page's own scripts


def hostile_tasks() -> list[Task]:
    """Every payload in a prompt, a response or a category; 3 payloads per task."""
    texts = LITERAL + MARKUP
    tasks = [Task(id=f"xss-{i}", kind="pair", prompt=texts[i], responses=(texts[i + 1], texts[i + 2]),
                  category="<b onmouseover=__xss.push('cat')>cat</b>")
             for i in range(0, len(texts) - 2, 3)]
    return tasks + [Task(id="xss-tail", kind="pair", prompt=texts[-2], responses=(texts[-1], "plain"))]


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0, rate_limit=0))
    store.import_tasks(hostile_tasks())
    for name in NAMES[1:]:  # other annotators, shown on the dashboard
        a = store.next_assignment(name)
        store.submit(a.id, name, "left", rationale=RATIONALE)
    yield store
    store.close()


def watched(page) -> list[str]:
    """Record every dialog (alert, confirm, prompt) the page opens; dismiss it."""
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs


# Elements and attributes no payload may leave behind in the text the app shows
# (`.rm-text`: task texts; `.prose`: Markdown; `table`: data frames and the features table).
LEFTOVERS = """roots => roots.flatMap(root => [...document.querySelectorAll(
    `${root} .rm-text, ${root} .rm-text *, ${root} .prose *, ${root} table *`)]).flatMap(el =>
  [...el.attributes].filter(a => /^on/i.test(a.name) || /^\\s*(javascript|data):/i.test(a.value))
    .map(a => `${el.tagName} ${a.name}=${a.value}`)
    .concat(['SCRIPT', 'IFRAME', 'IMG', 'SVG', 'MATH', 'DETAILS', 'STYLE', 'OBJECT', 'EMBED']
      .includes(el.tagName.toUpperCase()) ? [el.tagName] : []))"""


def assert_inert(page, dialogs: list[str], *roots: str) -> None:
    """No payload ran, no element or handler a payload could build is left under `roots`
    (default: the whole page), nothing was fetched from a payload's host."""
    assert page.evaluate("window.__xss") == []
    assert dialogs == []
    assert page.evaluate(LEFTOVERS, list(roots or ["body"])) == []
    assert not [url for url in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
                if "evil.example" in url]


def panels(page) -> str:
    return "\n".join(page.locator(f"{sel} .rm-text").inner_text() for sel in ("#rm-prompt", "#rm-left", "#rm-right"))


def test_payloads_in_tasks_names_and_rationales_stay_text(store, tmp_path):
    demo = lab_ui(store, Access(), tmp_path / "runs")
    with browser_page("about:blank") as page:
        page.add_init_script(HOOKS)
        dialogs = watched(page)
        page.goto(serve(demo))

        # sign in with a hostile name; it is shown as typed
        page.locator("#rm-name input").fill(NAMES[0])
        page.locator("#rm-signin").click()
        expect(page.locator("#rm-status")).to_contain_text(f"Signed in as {NAMES[0]}")
        expect(page.locator("#rm-left .rm-text")).to_be_visible()

        # label every task through the UI, reading each card; the first with a hostile rationale
        seen, done = [], 0
        while page.locator("#rm-choice-A").is_visible():
            seen.append(panels(page))
            assert_inert(page, dialogs, "#rm-prompt", "#rm-left", "#rm-right")
            if done == 0:
                page.locator("#rm-rationale textarea").fill(RATIONALE)
                page.locator("#rm-tags").get_by_label("unsafe", exact=True).check()
            page.locator("#rm-choice-B").click()
            done += 1
            expect(page.locator("#rm-status")).to_contain_text(f"{done} labelled")
        shown = "\n".join(seen)
        assert [t for t in LITERAL if t not in shown] == []
        assert done == len(hostile_tasks())

        # the dashboard lists every annotator by name, as text
        page.get_by_role("tab", name="Dashboard").click()
        table = page.locator("#rm-per-annotator")
        for name in NAMES:
            expect(table).to_contain_text(name)
        # an invite for a hostile name: the note and the invites table show the name as typed
        page.get_by_text("Invites (sign-in mode: open)").click()  # the accordion opens
        page.locator("#rm-invite-name input").fill(NAMES[2])
        page.locator("#rm-invite-create").click()
        expect(page.locator("#rm-invite-note")).to_contain_text(f"Invite for {NAMES[2]}, shown only now")
        expect(page.locator("#rm-invites")).to_contain_text(NAMES[2])
        assert_inert(page, dialogs)

        # the probe: a task fills the text boxes with its texts unchanged; the features table draws
        page.get_by_role("tab", name="Research").click()
        task = hostile_tasks()[0]
        page.locator("#rm-fill-task input").click()
        page.get_by_role("option", name=task.prompt[:40], exact=False).first.click()
        expect(page.locator("#rm-probe-prompt textarea")).to_have_value(task.prompt)
        expect(page.locator("#rm-probe-a textarea")).to_have_value(task.responses[0])
        expect(page.locator("#rm-probe-b textarea")).to_have_value(task.responses[1])
        expect(page.locator("#rm-probe-features table")).to_be_visible()
        page.wait_for_timeout(500)  # the live score has run
        assert_inert(page, dialogs)
    demo.close()

    labels = store.labels()
    first = labels[labels.annotator == NAMES[0]].iloc[0]
    assert (first.rationale, list(first.tags)) == (RATIONALE, ["unsafe"])  # stored as typed


def test_an_invite_link_with_a_payload_fills_the_box_and_runs_nothing(store, tmp_path):
    token = store.create_invite(NAMES[0])
    demo = lab_ui(store, Access(signin="invite"), tmp_path / "runs")
    url = serve(demo)
    with browser_page("about:blank") as page:
        page.add_init_script(HOOKS)
        dialogs = watched(page)
        bad = "\"><img src=x onerror=__xss.push('link')>"
        page.goto(f"{url}?invite={quote(bad)}")
        expect(page.locator("#rm-invite input")).to_have_value(bad)
        page.locator("#rm-signin").click()
        expect(page.get_by_text("This invite code is not valid")).to_be_visible()
        assert_inert(page, dialogs)

        page.goto(f"{url}?invite={token}")  # the real link: signed in under the invite's name, shown as text
        expect(page.locator("#rm-invite input")).to_have_value(token)
        page.locator("#rm-signin").click()
        expect(page.locator("#rm-status")).to_contain_text(f"Signed in as {NAMES[0]}")
        assert panels(page)
        assert_inert(page, dialogs)
    demo.close()
