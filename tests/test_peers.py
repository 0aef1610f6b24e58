"""labeling.peers: Chatbot Arena, Argilla and Label Studio exports into training data and the label store."""
import json

import pytest

from labeling.__main__ import main
from labeling.export import ExportConfig, export, load_export
from labeling.peers import judgements_from_rows, read_peer
from labeling.store import Store
from labeling.tasks import load_tasks
from rm.data import load_preferences


def _conv(prompt, reply):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]


def arena_battle(qid, winner, judge="arena_user_7", reply_a="Four.", reply_b="Five."):
    """A record as in lmsys/chatbot_arena_conversations (a subset of its columns)."""
    return {"question_id": qid, "model_a": "vicuna-13b", "model_b": "alpaca-13b", "winner": winner,
            "judge": judge, "conversation_a": _conv("What is 2+2?", reply_a),
            "conversation_b": _conv("What is 2+2?", reply_b), "turn": 1, "anony": True,
            "language": "English", "tstamp": 1682351591.5}


ARENA = [arena_battle("q1", "model_a"), arena_battle("q2", "model_b"), arena_battle("q3", "tie"),
         arena_battle("q4", "tie (bothbad)")]


def label_studio_export():
    """The JSON export of a project on the 'Human preference collection for RLHF' template."""
    def annotation(user, selected=None, choices=None, cancelled=False):
        result = []
        if selected:
            result.append({"id": "x1", "type": "pairwise", "from_name": "comparison", "to_name": "answer1,answer2",
                           "value": {"selected": selected}})
        if choices:
            result.append({"id": "x2", "type": "choices", "from_name": "verdict", "to_name": "prompt",
                           "value": {"choices": choices}})
        return {"id": 100 + user, "completed_by": user, "result": result, "was_cancelled": cancelled,
                "created_at": "2024-03-09T21:52:49.513742Z", "lead_time": 12.5}

    return [
        {"id": 1, "data": {"prompt": "Say hi", "answer1": "Hi!", "answer2": "Go away."},
         "annotations": [annotation(1, "left"), annotation(2, "right"), annotation(3, cancelled=True, selected="left")]},
        {"id": 2, "data": {"prompt": "Capital of France?", "answer1": "Paris", "answer2": "Lyon"},
         "annotations": [annotation(1, choices=["Tie"]), annotation(2, choices=["Both bad"]),
                         annotation(3)]},  # 3: no verdict (a comment only): left out
    ]


ARGILLA_V2 = [  # rg.Dataset.records.to_list(flatten=True): a ranking and a label question
    {"id": "r1", "status": "completed", "_server_id": "s1", "prompt": "Name a fruit", "response1": "apple",
     "response2": "rock", "ranking.responses": [["response1", "response2"], ["response2", "response1"]],
     "ranking.responses.users": ["u-1", "u-2"], "ranking.responses.status": ["submitted", "submitted"]},
    {"id": "r2", "status": "completed", "_server_id": "s2", "prompt": "Name a color", "response1": "blue",
     "response2": "seven", "ranking.responses": [["response1", "response2"], ["response2", "response1"]],
     "ranking.responses.users": ["u-1", "u-2"], "ranking.responses.status": ["submitted", "draft"]},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_arena_battles_become_training_rows_with_ties_kept(tmp_path):
    ds = load_preferences(_jsonl(tmp_path / "arena.jsonl", ARENA))
    assert ds.to_list() == [
        {"prompt": "What is 2+2?", "chosen": "Four.", "rejected": "Five.", "margin": 0.0, "tie": False},
        {"prompt": "What is 2+2?", "chosen": "Five.", "rejected": "Four.", "margin": 0.0, "tie": False},
        {"prompt": "What is 2+2?", "chosen": "Four.", "rejected": "Five.", "margin": 0.0, "tie": True},
        {"prompt": "What is 2+2?", "chosen": "Four.", "rejected": "Five.", "margin": 0.0, "tie": True}]


def test_arena_judgement_fields():
    j = judgements_from_rows([("a.jsonl line 1", arena_battle("q9", "tie (bothbad)"))], "a.jsonl")[0]
    assert (j.source, j.choice, j.annotator, j.task_id) == ("arena", "both_bad", "arena:arena_user_7", "arena-q9")
    assert j.responses == ("Four.", "Five.") and j.meta == {"model_a": "vicuna-13b", "model_b": "alpaca-13b"}
    assert j.created_at == "2023-04-24T15:53:11.500000+00:00"


def test_multi_turn_battle_keeps_the_rest_of_each_conversation():
    battle = arena_battle("m1", "model_b")
    battle["conversation_a"] += [{"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "Six."}]
    battle["conversation_b"] += [{"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "Nine."}]
    j = judgements_from_rows([("m", battle)])[0]
    assert j.prompt == "What is 2+2?"
    assert j.responses == ("\n\nAssistant: Four.\n\nHuman: And 3+3?\n\nAssistant: Six.",
                           "\n\nAssistant: Five.\n\nHuman: And 3+3?\n\nAssistant: Nine.")


def test_label_studio_export(tmp_path):
    path = tmp_path / "project-1.json"
    path.write_text(json.dumps(label_studio_export()))
    peer = read_peer(path)
    assert peer.format == "labelstudio"
    assert [(j.task_id, j.annotator, j.choice, j.responses) for j in peer.judgements] == [
        ("labelstudio-1", "labelstudio:1", "a", ("Hi!", "Go away.")),
        ("labelstudio-1", "labelstudio:2", "b", ("Hi!", "Go away.")),
        ("labelstudio-2", "labelstudio:1", "tie", ("Paris", "Lyon")),
        ("labelstudio-2", "labelstudio:2", "both_bad", ("Paris", "Lyon"))]
    assert peer.judgements[0].seconds == 12.5
    assert peer.judgements[0].created_at == "2024-03-09T21:52:49.513742+00:00"
    assert load_preferences(path)["chosen"] == ["Hi!", "Go away.", "Paris", "Paris"]


def test_argilla_v2_ranking_and_v1_records():
    peer = judgements_from_rows([(f"row {i}", r) for i, r in enumerate(ARGILLA_V2)], "argilla")
    assert [(j.task_id, j.annotator, j.choice) for j in peer] == [
        ("argilla-r1", "argilla:u-1", "a"), ("argilla-r1", "argilla:u-2", "b"),
        ("argilla-r2", "argilla:u-1", "a")]  # u-2's draft on r2 is not a verdict
    v1 = {"external_id": "e1", "instruction": "2+2?", "response-1": "4", "response-2": "5", "metadata": "{}",
          "preference": [{"user_id": "u-9", "value": "tie", "status": "submitted"},
                         {"user_id": "u-8", "value": "response-2", "status": "submitted"}],
          "rank": [{"user_id": "u-7", "value": [{"rank": 1, "value": "response-1"}, {"rank": 1, "value": "response-2"}],
                    "status": "submitted"}]}
    assert [(j.annotator, j.choice, j.task_id) for j in judgements_from_rows([("v1", v1)])] == [
        ("argilla:u-9", "tie", "argilla-e1"), ("argilla:u-8", "b", "argilla-e1"), ("argilla:u-7", "tie", "argilla-e1")]


def test_every_bad_record_is_named_and_nothing_is_read():
    bad = [("f line 1", arena_battle("q1", "model_c")), ("f line 2", arena_battle("q2", "model_a")),
           ("f line 3", {**arena_battle("q3", "model_a"), "conversation_b": []})]
    with pytest.raises(ValueError) as caught:
        judgements_from_rows(bad, "f")
    assert str(caught.value) == (
        "2 problem(s) in f (arena format), nothing imported:\n"
        "f line 1: winner: expected one of model_a, model_b, tie, tie (bothbad), both_bad, got 'model_c'\n"
        "f line 3: conversation_b: expected user turns, then the assistant's reply (a list of {'role', 'content'})")
    argilla = {**ARGILLA_V2[0], "ranking.responses": [["banana"]], "ranking.responses.users": ["u-1"],
               "ranking.responses.status": ["submitted"]}
    with pytest.raises(ValueError, match=r"a: ranking: \['banana'\] names neither response field \(response1, response2\)"):
        judgements_from_rows([("a", argilla)])


def test_import_into_the_store_as_tasks_and_labels_once(tmp_path, capsys):
    src, db = tmp_path / "project-1.json", tmp_path / "labels.db"
    src.write_text(json.dumps(label_studio_export()))
    assert main(["import", str(src), "--db", str(db)]) == 0
    assert main(["import", str(src), "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"imported 2 new task(s) and 4 new label(s) (0 already present) from {src} (labelstudio)")
    assert out[1].startswith(f"imported 0 new task(s) and 0 new label(s) (4 already present) from {src}")
    with Store(db) as store:
        labels = store.labels()
        assert [t.id for t in store.tasks()] == ["labelstudio-1", "labelstudio-2"]
        export(store, ExportConfig(out=str(tmp_path / "export"), format="jsonl"))
    assert labels[["task_id", "annotator", "choice", "strength", "margin", "shown_order", "seconds"]].values.tolist() == [
        ["labelstudio-1", "labelstudio:1", "left", 2, 2 / 3, "ab", 12.5],
        ["labelstudio-1", "labelstudio:2", "right", 2, 2 / 3, "ab", 12.5],
        ["labelstudio-2", "labelstudio:1", "tie", 2, 0.0, "ab", 12.5],
        ["labelstudio-2", "labelstudio:2", "both_bad", 2, 0.0, "ab", 12.5]]
    rows = load_export(tmp_path / "export").to_list()
    assert [(r["chosen"], r["tie"], r["both_bad"]) for r in rows] == [
        ("Hi!", False, False), ("Go away.", False, False), ("Paris", True, False), ("Paris", True, True)]


def test_load_tasks_reads_a_peer_export_as_pair_tasks(tmp_path):
    tasks = load_tasks(_jsonl(tmp_path / "arena.jsonl", ARENA[:2]))
    assert [(t.id, t.kind, t.prompt, t.responses) for t in tasks] == [
        ("arena-q1", "pair", "What is 2+2?", ("Four.", "Five.")), ("arena-q2", "pair", "What is 2+2?", ("Four.", "Five."))]
    assert tasks[0].meta == {"source": "arena", "model_a": "vicuna-13b", "model_b": "alpaca-13b"}
