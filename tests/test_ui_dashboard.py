"""ui.dashboard: the researcher's statistics and export, over HTTP and called directly."""
from __future__ import annotations

import json
import shutil

import pytest
from gradio_client import Client

from labeling import dashboard
import gradio as gr

from ui import dashboard as dashboard_tab
from ui.auth import Access, Session
from ui.context import App
from ui.dashboard import summary_text


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
    rows = {row[0]: row for row in per_annotator["data"]}
    assert rows["erin"][1] == 1  # labels
    total, people = rows["(all)"][1], len(rows) - 1  # the module's server is shared with other tests
    assert summary.startswith(f"**{total} label{'s' * (total != 1)}** from **{people} annotator"
                              f"{'s' * (people != 1)}** · Krippendorff's α")


def test_summary_and_tables_count_labels(store):
    for who, choice in [("ann", "left"), ("ben", "right"), ("ann", "left")]:
        assignment = store.next_assignment(who)
        store.submit(assignment.id, who, choice, 2)
    labels = store.labels()
    assert summary_text(labels).startswith("**3 labels** from **2 annotators**")
    table = dashboard.annotator_table(labels).set_index("annotator")
    assert table.loc["ann", "labels"] == 2 and table.loc["(all)", "labels"] == 3
    # ann picked left twice, ben right once: 2 of 3 decisive picks were left
    assert table.loc["ann", "left picks"].startswith("100% (")
    assert table.loc["(all)", "left picks"].startswith("67% (")
    assert summary_text(labels.iloc[:0]).startswith("**No labels yet.**")




def test_refresh_handler_fills_every_view(store, tmp_path):
    app = App(store, Access(admin_token="t"), tmp_path / "runs")
    with gr.Blocks():
        tab = dashboard_tab.build(app)
    with pytest.raises(gr.Error, match="needs the researcher role"):
        dashboard_tab.refresh(app, tab, Session(annotator="bob"))
    for who in ("ann", "ben"):
        store.submit(store.next_assignment(who).id, who, "left", 2)
    out = dashboard_tab.refresh(app, tab, Session(annotator="ann", researcher=True))
    assert out[tab.summary].startswith("**2 labels** from **2 annotators**")
    assert out[tab.per_annotator].annotator.tolist() == ["ann", "ben", "(all)"]
    assert out[tab.per_kind]["labels"].sum() == 2
    assert {type(out[tab.labels_plot]).__name__, type(out[tab.bias_plot]).__name__} == {"Figure"}


def test_export_handler_zips_the_labels(store, tmp_path):
    app = App(store, Access(), tmp_path / "runs")
    store.submit(store.next_assignment("ann").id, "ann", "right", 1)
    archive = dashboard_tab.export_dataset(app, "none", "jsonl", Session(researcher=True))
    shutil.unpack_archive(archive, tmp_path / "x")
    rows = [json.loads(line) for line in (tmp_path / "x" / "preferences.jsonl").read_text().splitlines()]
    assert [(r["annotator"], r["margin"]) for r in rows] == [("ann", 1 / 3)]
    with pytest.raises(gr.Error, match="The export failed: unknown format 'xml'"):
        dashboard_tab.export_dataset(app, "none", "xml", Session(researcher=True))


def test_invites_are_made_listed_and_revoked_by_researchers(store, tmp_path):
    app = App(store, Access(signin="invite", admin_token="t"), tmp_path / "runs")
    with gr.Blocks():
        tab = dashboard_tab.build(app)
    with pytest.raises(gr.Error, match="needs the researcher role"):
        dashboard_tab.create_invite(app, tab, "ann", Session(annotator="ann"), None)
    out = dashboard_tab.create_invite(app, tab, " ann ", Session(researcher=True), None)
    token = out[tab.invite_note].split("the code `")[1].split("`")[0]
    assert store.verify_invite(token) == "ann" and f"`/?invite={token}`" in out[tab.invite_note]
    assert out[tab.invites][["name", "active", "labels"]].values.tolist() == [["ann", True, 0]]
    out = dashboard_tab.revoke_invite(app, tab, "ann", Session(researcher=True))
    assert store.verify_invite(token) is None and out[tab.invites].active.tolist() == [False]
    with pytest.raises(gr.Error, match="Nothing was revoked: no invite for 'bob'"):
        dashboard_tab.revoke_invite(app, tab, "bob", Session(researcher=True))
    with pytest.raises(gr.Error, match="No invite was made: name must be a non-empty name"):
        dashboard_tab.create_invite(app, tab, "  ", Session(researcher=True), None)


def test_style_control_recovers_the_annotators_length_preference(tmp_path):
    from labeling.store import StoreConfig, open_store
    from labeling.tasks import Task

    store = open_store(tmp_path / "style.db", StoreConfig(seed=0, rate_limit=0))
    app = App(store, Access(), tmp_path / "runs")
    with gr.Blocks():
        tab = dashboard_tab.build(app)
    with pytest.raises(gr.Error, match="The style fit failed: no labels collected yet"):
        dashboard_tab.style_control(app, tab, None, Session(researcher=True))
    rng = __import__("random").Random(0)
    store.import_tasks([Task(f"len-{i}", "pair", f"question {i}", ("short answer.", " ".join(["a long answer"] * (2 + i % 5))))
                        for i in range(40)])
    for i in range(60):  # annotators who prefer the longer response 90% of the time
        a = store.next_assignment(f"ann{i % 3}")
        longer = "left" if len(a.left) > len(a.right) else "right"
        store.submit(a.id, f"ann{i % 3}", longer if rng.random() < 0.9 else {"left": "right", "right": "left"}[longer],
                     2, seconds=10)
    out = dashboard_tab.style_control(app, tab, None, Session(researcher=True))
    table = out[tab.style_table].set_index("term")
    assert table.loc["length", "labels_ci_low"] > 0  # the annotators reward length, with 95% confidence
    assert type(out[tab.style_plot]).__name__ == "Figure"
