"""app.py: the labeling endpoints through gradio_client, roles, and safe rendering."""
from __future__ import annotations

import io
import json
import shutil

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from app_support import serve
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=3, triads=1, agreement=1, gold=1))
    yield store
    store.close()


@pytest.fixture
def open_app(store):
    demo = app.build_ui(store, app.Access())
    yield Client(serve(demo), verbose=False)
    demo.close()


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory):
    """Roles configured: researcher "carol" (verified identity only) or the token "s3cret"."""
    store = open_store(tmp_path_factory.mktemp("guarded") / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks())
    demo = app.build_ui(store, app.Access(researchers=frozenset({"carol"}), admin_token="s3cret"))
    yield serve(demo)
    demo.close()
    store.close()


# ----------------------------------------------------------------------------- endpoints


def test_double_submit_stores_one_label(open_app, store):
    task = open_app.predict("alice", api_name="/next_task")
    first = open_app.predict("alice", task["assignment_id"], "A", "much", " terse ", ["hedges"],
                             api_name="/submit_label")
    again = open_app.predict("alice", task["assignment_id"], "B", "slightly", "", [],
                             api_name="/submit_label")
    labels = store.labels()
    assert len(labels) == 1
    assert again["label_id"] == first["label_id"]
    row = labels.iloc[0]
    # "A" is the left response as shown; the first submit wins
    assert (row.choice, row.strength, row.winner) == ("left", 3, row.left_index)
    assert row.chosen == task["response_a"] and row.rejected == task["response_b"]
    assert (row.rationale, row.tags) == ("terse", ["hedges"])
    assert row.seconds >= 0
    assert first["progress"]["done"] == 1


def test_next_task_serves_the_open_task_again_until_labelled(open_app):
    first = open_app.predict("alice", api_name="/next_task")
    again = open_app.predict("alice", api_name="/next_task")
    assert again["assignment_id"] == first["assignment_id"]
    open_app.predict("alice", first["assignment_id"], "tie", "clearly", "", [], api_name="/submit_label")
    after = open_app.predict("alice", api_name="/next_task")
    assert after["assignment_id"] != first["assignment_id"]
    assert after["progress"]["done"] == 1


def test_script_labels_every_task(open_app, store):
    """The README's loop: next_task until None, each pairing of each task once."""
    task = open_app.predict("bob", api_name="/next_task")
    served = []
    while task["assignment_id"] is not None:
        served.append(task["assignment_id"])
        open_app.predict("bob", task["assignment_id"], "B", "clearly", "", [], api_name="/submit_label")
        task = open_app.predict("bob", api_name="/next_task")
    # 3 pairs + 1 agreement + 1 gold + a triad's 3 pairings; the loop can end early only
    # when the triad's last pairing would follow its sibling back to back
    assert len(served) == len(set(served)) == len(store.labels())
    assert len(served) + task["progress"]["remaining"] == 8


@pytest.mark.parametrize("args, match", [
    (("maybe", "clearly", "", []), "choice must be one of A, B, tie, both_bad"),
    (("A", "hugely", "", []), "strength must be one of slightly, clearly, much"),
    (("A", "clearly", "", ["rude"]), "unknown tag 'rude'"),
])
def test_submit_label_rejects_bad_values(open_app, store, args, match):
    task = open_app.predict("alice", api_name="/next_task")
    with pytest.raises(AppError, match=match):
        open_app.predict("alice", task["assignment_id"], *args, api_name="/submit_label")
    assert store.labels().empty


def test_submit_label_refuses_someone_elses_assignment(open_app, store):
    task = open_app.predict("alice", api_name="/next_task")
    with pytest.raises(AppError, match="belongs to another annotator"):
        open_app.predict("mallory", task["assignment_id"], "A", "clearly", "", [], api_name="/submit_label")
    with pytest.raises(AppError, match="no assignment with id 999"):
        open_app.predict("alice", 999, "A", "clearly", "", [], api_name="/submit_label")
    assert store.labels().empty


def test_next_task_needs_a_name(open_app):
    with pytest.raises(AppError, match="Enter your name"):
        open_app.predict("  ", api_name="/next_task")


# ----------------------------------------------------------------------------- roles


@pytest.mark.parametrize("api_name, args", [("/dashboard", ()), ("/export_dataset", ("none", "jsonl"))])
@pytest.mark.parametrize("name, token", [("bob", ""), ("bob", "wrong"), ("carol", "")])
def test_researcher_endpoints_refuse_non_researchers(guarded_app, api_name, args, name, token):
    # "carol" is a listed researcher, but a typed name is not a verified identity
    client = Client(guarded_app, verbose=False)
    client.predict(name, token, api_name="/sign_in")
    with pytest.raises(AppError, match="needs the researcher role"):
        client.predict(*args, api_name=api_name)


@pytest.mark.parametrize("api_name, args", [("/dashboard", ()), ("/export_dataset", ("none", "jsonl"))])
def test_researcher_endpoints_refuse_a_session_that_never_signed_in(guarded_app, api_name, args):
    with pytest.raises(AppError, match="needs the researcher role"):
        Client(guarded_app, verbose=False).predict(*args, api_name=api_name)


@pytest.mark.parametrize("access, verified, token, expected", [
    (app.Access(), None, None, True),  # nothing configured: a local run
    (app.Access(admin_token="s3cret"), None, "s3cret", True),
    (app.Access(admin_token="s3cret"), None, "s3cre", False),
    (app.Access(admin_token="s3cret"), None, None, False),
    (app.Access(researchers=frozenset({"carol"})), "carol", None, True),
    (app.Access(researchers=frozenset({"carol"})), "bob", "anything", False),
    (app.Access(researchers=frozenset({"carol"})), None, None, False),
])
def test_access_grants(access, verified, token, expected):
    assert access.grants(verified, token) is expected


def test_access_from_env():
    access = app.Access.from_env({"RMLAB_RESEARCHERS": " carol, dan ,", "RMLAB_ADMIN_TOKEN": ""})
    assert access == app.Access(researchers=frozenset({"carol", "dan"}), admin_token=None)
    assert not access.open
    assert app.Access.from_env({}).open


# ----------------------------------------------------------------------------- rendering


def test_render_markdown_shows_raw_html_as_text():
    out = app.render_markdown('**bold** <script>alert(1)</script> <img src=x onerror="alert(1)">')
    assert "<strong>bold</strong>" in out
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_render_markdown_keeps_code_and_drops_script_links():
    out = app.render_markdown("```python\nprint('<b>')\n\nx = 1\n```\n\n[click](javascript:alert(1)) [ok](https://example.org)")
    assert "print(&#39;&lt;b&gt;&#39;)\n\nx = 1" in out or "print('&lt;b&gt;')\n\nx = 1" in out
    assert 'href="javascript' not in out  # markdown-it leaves such a link as plain text
    assert 'href="https://example.org"' in out and "nofollow" in out


def test_api_lists_only_the_named_endpoints(open_app):
    api = open_app.view_api(return_format="dict", print_info=False)
    research = {"/score", "/train", "/stop_training", "/enqueue_policy_pairs", "/correlations", "/sycophancy_audit",
                "/counterfactual", "/reliability", "/compare", "/goodhart"}  # tests/test_app_research.py
    assert set(api["named_endpoints"]) == {"/sign_in", "/next_task", "/submit_label", "/dashboard",
                                           "/export_dataset"} | research
    assert not api["unnamed_endpoints"]  # the buttons' own events are private


def test_researcher_token_unlocks_the_export(guarded_app, tmp_path):
    client = Client(guarded_app, verbose=False, download_files=str(tmp_path))
    client.predict("dana", "s3cret", api_name="/sign_in")
    task = client.predict("dana", api_name="/next_task")
    client.predict("dana", task["assignment_id"], "A", "slightly", "", [], api_name="/submit_label")
    archive = client.predict("none", "jsonl", api_name="/export_dataset")
    shutil.unpack_archive(archive, tmp_path / "export")
    rows = [json.loads(line) for line in (tmp_path / "export" / "preferences.jsonl").read_text().splitlines()]
    assert [(r["annotator"], r["chosen"], r["margin"]) for r in rows] == [("dana", task["response_a"], 1 / 3)]
    assert json.loads((tmp_path / "export" / "export_config.json").read_text())["aggregate"] == "none"


def test_dashboard_for_a_researcher(guarded_app):
    client = Client(guarded_app, verbose=False)
    client.predict("erin", "s3cret", api_name="/sign_in")
    task = client.predict("erin", api_name="/next_task")
    client.predict("erin", task["assignment_id"], "B", "clearly", "", [], api_name="/submit_label")
    summary, per_annotator, per_kind, *_plots = client.predict(api_name="/dashboard")
    assert "annotator" in summary and "Krippendorff" in summary
    rows = {row[0]: row for row in per_annotator["data"]}
    assert rows["erin"][1] == 1  # labels
    assert "(all)" in rows


def test_summary_and_tables_count_labels(store):
    for who, choice in [("ann", "left"), ("ben", "right"), ("ann", "left")]:
        assignment = store.next_assignment(who)
        store.submit(assignment.id, who, choice, 2)
    labels = store.labels()
    assert app.summary_text(labels).startswith("**3 labels** from **2 annotators**")
    table = app.annotator_table(labels).set_index("annotator")
    assert table.loc["ann", "labels"] == 2 and table.loc["(all)", "labels"] == 3
    # ann picked left twice, ben right once: 2 of 3 decisive picks were left
    assert table.loc["ann", "left picks"].startswith("100% (")
    assert table.loc["(all)", "left picks"].startswith("67% (")
    assert app.summary_text(labels.iloc[:0]).startswith("**No labels yet.**")


def test_untrusted_names_stay_literal(store):
    assert app.markdown_literal("**x** [a](javascript:1) <b> $y$") == \
        r"\*\*x\*\* \[a\]\(javascript:1\) &lt;b&gt; \$y\$"
    # a name that matplotlib would parse as broken mathtext must not break the dashboard
    assignment = store.next_assignment(r"$\frac$")
    store.submit(assignment.id, r"$\frac$", "left", 2)
    labels = store.labels()
    for figure in (app.plot_label_counts(labels), app.plot_biases(labels)):
        figure.savefig(io.BytesIO(), format="png")
        labels_shown = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
        assert r"\$\frac\$" in labels_shown


def test_a_verified_identity_wins_over_a_typed_name():
    profile = gr.OAuthProfile({"name": "Carol C", "preferred_username": "carol",
                               "profile": "", "picture": ""})
    assert app.verified_user(None, profile) == "carol"
    assert app.annotator_name("mallory", app.verified_user(None, profile)) == "carol"
    assert app.annotator_name("  mallory ", None) == "mallory"
    with pytest.raises(gr.Error, match="Enter your name"):
        app.annotator_name(" ", None)


# ----------------------------------------------------------------------------- entry point


def test_host_and_port_default_to_the_gradio_env_then_to_ours(capsys):
    assert vars(app.parse_args([], env={})) == {"host": "127.0.0.1", "port": 7860, "db": None, "share": False,
                                                "runs": None}
    spaces = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}
    assert (app.parse_args([], env=spaces).host, app.parse_args([], env=spaces).port) == ("0.0.0.0", 7861)
    assert app.parse_args(["--port", "9000", "--host", "::1"], env=spaces).port == 9000
    with pytest.raises(SystemExit):
        app.parse_args([], env={"GRADIO_SERVER_PORT": "http"})
    assert "invalid int value: 'http'" in capsys.readouterr().err


def test_main_serves_the_env_store_and_runs(tmp_path, monkeypatch):
    (tmp_path / "runs" / "rm" / "from-env").mkdir(parents=True)
    (tmp_path / "runs" / "rm" / "from-env" / "rmlab_config.json").write_text("{}")
    monkeypatch.setenv("RMLAB_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("RMLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    launched = {}
    monkeypatch.setattr(app, "launch", lambda demo, **kwargs: launched.update(demo=demo, **kwargs))
    app.main([])
    assert (launched["host"], launched["port"], launched["share"]) == ("127.0.0.1", 7999, False)
    assert (tmp_path / "env.db").is_file()  # the seeded store lives where RMLAB_DB says
    models = next(b for b in launched["demo"].blocks.values() if getattr(b, "elem_id", None) == "rm-models")
    assert models.choices == [("from-env", str(tmp_path / "runs" / "rm" / "from-env"))]
