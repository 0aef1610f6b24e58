"""ui.label: the labeling endpoints through gradio_client, the researcher endpoints' refusals,
and the tab's handlers called directly (no server)."""
from __future__ import annotations

from dataclasses import replace

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app_support import lab_ui, serve
from ui import label
from ui.auth import Access, Session
from ui.context import App, Shell


@pytest.fixture
def open_app(store):
    demo = lab_ui(store)
    yield Client(serve(demo), verbose=False)
    demo.close()


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


@pytest.mark.parametrize("api_name, args", [("/dashboard", ()), ("/export_dataset", ("none", "jsonl")),
                                            ("/create_invite", ("mallory",)), ("/revoke_invite", ("carol",)),
                                            ("/style_control", ("",))])
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



def test_api_lists_only_the_named_endpoints(open_app):
    api = open_app.view_api(return_format="dict", print_info=False)
    research = {"/score", "/train", "/stop_training", "/enqueue_policy_pairs", "/correlations", "/sycophancy_audit",
                "/counterfactual", "/reliability", "/compare", "/goodhart", "/train_starter", "/rl", "/stop_rl"}  # tests/test_ui_research.py
    assert set(api["named_endpoints"]) == {"/sign_in", "/next_task", "/submit_label", "/dashboard",
                                           "/export_dataset", "/create_invite", "/revoke_invite", "/style_control"} | research
    assert not api["unnamed_endpoints"]  # the buttons' own events are private




# ----------------------------------------------------------------------------- handlers, no server


@pytest.fixture
def tab(store, tmp_path):
    """The Label tab's components and the page shell, built without serving them."""
    app = App(store, Access(admin_token="s3cret"), tmp_path / "runs")
    with gr.Blocks() as page:
        session = gr.State(Session())
        components = label.build(app)
        with gr.Tab("researchers only") as research:
            pass
    return app, components, Shell(page, session, (research,))


def test_sign_in_shows_the_first_task_and_the_role(tab, store):
    app, t, shell = tab
    out = label.sign_in(app, t, shell, " alice ", "", Session(), None, None)
    sess = out[shell.session]
    assert (sess.annotator, sess.researcher) == ("alice", False)
    assert sess.assignment_id == store.next_assignment("alice").id  # the open task, served again
    assert out[t.card].visible and not out[t.finished].visible and out[shell.researcher_tabs[0]].visible is False
    assert "alice" in out[t.status] and "**0** labelled" in out[t.status]
    assert label.sign_in(app, t, shell, "bob", "s3cret", Session(), None, None)[shell.researcher_tabs[0]].visible


def test_a_click_stores_the_label_and_shows_the_next_task(tab, store):
    app, t, shell = tab
    sess = label.sign_in(app, t, shell, "alice", "", Session(), None, None)[shell.session]
    out = label.submit(app, t, shell, "B", sess, "much", " why ", ["hedges"])
    row = store.labels().iloc[0]
    assert (row.assignment_id, row.choice, row.strength, row.rationale, row.tags) == \
        (sess.assignment_id, "right", 3, "why", ["hedges"])
    nxt = out[shell.session]
    assert nxt.assignment_id not in (None, sess.assignment_id) and "**1** labelled" in out[t.status]
    assert (out[t.strength], out[t.tags], out[t.rationale]) == ("clearly", [], "")  # the form is reset
    # a second press while nothing is open stores nothing
    assert label.submit(app, t, shell, "A", replace(nxt, assignment_id=None), "clearly", "", []) == \
        {shell.session: gr.skip()}
    assert len(store.labels()) == 1


def test_skip_and_undo_move_through_the_queue(tab, store):
    app, t, shell = tab
    sess = label.sign_in(app, t, shell, "alice", "", Session(), None, None)[shell.session]
    skipped = label.skip(app, t, shell, sess)[shell.session]
    assert skipped.assignment_id != sess.assignment_id
    back = label.undo(app, t, shell, skipped)[shell.session]
    assert back.assignment_id == sess.assignment_id  # the skipped task comes back first
    with pytest.raises(gr.Error, match="Nothing to undo yet"):
        label.undo(app, t, shell, replace(back, annotator="nobody"))


@pytest.mark.parametrize("choice, strength, match", [
    ("maybe", "clearly", "choice must be one of A, B, tie, both_bad"),
    ("A", "hugely", "strength must be one of slightly, clearly, much"),
])
def test_a_bad_value_from_the_page_is_refused(tab, store, choice, strength, match):
    app, t, shell = tab
    sess = label.sign_in(app, t, shell, "alice", "", Session(), None, None)[shell.session]
    with pytest.raises(gr.Error, match=match):
        label.submit(app, t, shell, choice, sess, strength, "", [])
    assert store.labels().empty


def test_signed_out_sessions_cannot_label(tab):
    app, t, shell = tab
    with pytest.raises(gr.Error, match="Sign in first"):
        label.submit(app, t, shell, "A", Session(assignment_id=1), "clearly", "", [])


# ----------------------------------------------------------------------------- invite sign-in


@pytest.fixture
def invite_app(store):
    """Invite sign-in (no role configured, so everyone who signs in is a researcher)."""
    demo = lab_ui(store, Access(signin="invite"))
    yield serve(demo).rstrip("/")
    demo.close()


def test_invite_mode_refuses_typed_names_and_takes_invite_tokens(invite_app, store):
    import httpx

    from app_support import ApiError, call_api

    token = store.create_invite("alice")
    with httpx.Client(timeout=60) as client:
        with pytest.raises(ApiError, match="Sign in with your invite"):
            call_api(client, invite_app, "next_task", "alice")  # a typed name is nobody
        with pytest.raises(ApiError, match="not valid"):
            call_api(client, invite_app, "next_task", "alice", headers={"X-RMLab-Invite": token[:-1] + "x"})
        task = call_api(client, invite_app, "next_task", "mallory", headers={"X-RMLab-Invite": token})
        out = call_api(client, invite_app, "submit_label", "mallory", task["assignment_id"], "A", "clearly", "", [],
                       headers={"X-RMLab-Invite": token})
        assert out["label_id"] and out["next"]["assignment_id"] not in (None, task["assignment_id"])
        store.revoke_invite("alice")
        with pytest.raises(ApiError, match="not valid"):
            call_api(client, invite_app, "next_task", "", headers={"X-RMLab-Invite": token})
    assert store.labels().annotator.tolist() == ["alice"]  # stored under the invite's name


def test_invite_sign_in_in_the_tab(store, tmp_path):
    app = App(store, Access(signin="invite", admin_token="s3cret"), tmp_path / "runs")
    with gr.Blocks() as page:
        session = gr.State(Session())
        t = label.build(app)
    shell = Shell(page, session, ())
    assert not t.name.visible and t.invite.visible
    token = store.create_invite("bea")
    with pytest.raises(gr.Error, match="Sign in with your invite"):
        label.sign_in(app, t, shell, "bea", "", Session(), None, None)
    out = label.sign_in(app, t, shell, "anyone", "", Session(), None, None, invite=f" {token} ")
    assert (out[shell.session].annotator, out[shell.session].researcher) == ("bea", False)
    # the researcher token still grants the role; the typed name is still ignored
    out = label.sign_in(app, t, shell, "carol", "s3cret", Session(), None, None, invite=token)
    assert (out[shell.session].annotator, out[shell.session].researcher) == ("bea", True)
