"""Hostile input: broken task files, bad values sent straight to the store, path traversal.

Each case is one parametrized test. A refusal must be one clear error naming what and where
(file, line, field), leave the store as it was, and never be a traceback. The store cases run
on SQLite and, when env RMLAB_TEST_PG_URL is set, on PostgreSQL (which refuses NUL bytes and
over-long ids that SQLite would take). UI and API cases (HTML in every field, endpoints)
belong here too.
"""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling.__main__ import main
from labeling.limits import MAX_CHARS
from labeling.store import Store, StoreConfig
from labeling.tasks import load_tasks
from labeling.testing import PG_ENV, temp_db, tiny_tasks
from labeling.vocab import TAGS

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set"))]
GOOD = {"kind": "pair", "prompt": "p", "responses": ["a", "b"]}


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def nested(depth: int) -> bytes:
    return ('{"kind": "pair", "prompt": "p", "responses": ["a", "b"], "meta": {"x": '
            + "[" * depth + "]" * depth + "}}\n").encode()


# ---------------------------------------------------------------- broken task files

# (file name, its bytes, the error's line after the "N problem(s) in ..." header)
FILES = [
    pytest.param("t.jsonl", jsonl(GOOD) + '{"kind": "pair", "prompt": "café"}\n'.encode("latin-1"),
                 "t.jsonl line 2: not UTF-8 text (byte 0xe9 at byte 32 of the line); save the file as UTF-8",
                 id="latin-1"),
    pytest.param("t.jsonl", "\ufeff".encode("utf-16-le") + json.dumps(GOOD).encode("utf-16-le"),
                 "t.jsonl line 1: not UTF-8 text (byte 0xff at byte 1 of the line); save the file as UTF-8",
                 id="utf-16"),
    pytest.param("t.csv", b"kind,prompt,response_a,response_b\npair,p,a,b\npair,\xff,a,b\n",
                 "t.csv line 3: not UTF-8 text (byte 0xff at byte 6 of the line); save the file as UTF-8",
                 id="csv-not-utf8"),
    pytest.param("t.jsonl", jsonl({"kind": "pair", "responses": ["a", "b"]}),
                 "t.jsonl line 1, field 'prompt': is required", id="missing-field"),
    pytest.param("t.jsonl", jsonl({**GOOD, "colour": "red"}),
                 "t.jsonl line 1, field 'colour': unknown field; expected one of id, kind, prompt, "
                 "responses, agreeing, better, category, meta", id="extra-field"),
    pytest.param("t.jsonl", jsonl({**GOOD, "x" * 5000: 1}),
                 f"t.jsonl line 1, field '{'x' * 40}...': unknown field; expected one of id, kind, "
                 "prompt, responses, agreeing, better, category, meta", id="huge-field-name"),
    pytest.param("t.jsonl", jsonl({**GOOD, "responses": {"a": "x", "b": "y"}}),
                 "t.jsonl line 1, field 'responses': expected a list of strings, got dict", id="responses-dict"),
    pytest.param("t.jsonl", jsonl({**GOOD, "responses": ["a", 2]}),
                 "t.jsonl line 1, field 'responses': response 1 must be a non-empty string", id="response-int"),
    pytest.param("t.jsonl", jsonl({**GOOD, "kind": "gold", "better": "1"}),
                 "t.jsonl line 1, field 'better': expected an index 0..1, got '1'", id="index-string"),
    pytest.param("t.jsonl", jsonl({**GOOD, "kind": "gold", "better": True}),
                 "t.jsonl line 1, field 'better': expected an index 0..1, got True", id="index-bool"),
    pytest.param("t.jsonl", jsonl({**GOOD, "kind": "x" * 10 ** 6}),
                 "t.jsonl line 1, field 'kind': expected one of pair, triad, agreement, gold, got "
                 "'" + "x" * 39 + "... (1,000,002 characters)", id="huge-kind"),
    pytest.param("t.jsonl", jsonl({**GOOD, "id": "a"}, {**GOOD, "id": "a", "prompt": "q"}),
                 "t.jsonl line 2, field 'id': duplicate id 'a' with different content (first at t.jsonl line 1)",
                 id="duplicate-id"),
    pytest.param("t.jsonl", b'{"kind": "pair", "prompt": "p", "prompt": "q", "responses": ["a", "b"]}\n',
                 "t.jsonl line 1: field 'prompt' appears twice in one object", id="duplicate-key"),
    pytest.param("t.jsonl", jsonl({**GOOD, "id": "i" * 201}),
                 "t.jsonl line 1, field 'id': is 201 characters long; the limit is 200", id="long-id"),
    pytest.param("t.jsonl", jsonl({**GOOD, "prompt": "p\x00q"}),
                 "t.jsonl line 1, field 'prompt': contains a NUL character at position 1", id="nul"),
    pytest.param("t.jsonl", b'{"kind": "pair", "prompt": "\\ud800", "responses": ["a", "b"]}\n',
                 "t.jsonl line 1, field 'prompt': is not valid Unicode (an unpaired surrogate at position 0)",
                 id="lone-surrogate"),
    pytest.param("t.jsonl", nested(100_000), "t.jsonl line 1: invalid JSON (nested too deeply)",
                 id="deep-nesting"),
    pytest.param("t.jsonl", ('{"kind": "gold", "prompt": "p", "responses": ["a", "b"], "better": '
                             + "9" * 5000 + "}\n").encode(),
                 "t.jsonl line 1: invalid JSON (Exceeds the limit (4300 digits) for integer string "
                 "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)",
                 id="huge-integer"),
    pytest.param("t.jsonl", b'{"kind": "pair", "prompt": "p", "responses": ["a", "b"], "meta": {"x": NaN}}\n',
                 "t.jsonl line 1, field 'meta': must be plain JSON (strings, numbers, lists, objects): "
                 "Out of range float values are not JSON compliant", id="meta-nan"),
    pytest.param("t.jsonl", b'["kind", "pair"]\n', "t.jsonl line 1: expected a JSON object", id="array-line"),
]


def import_file(tmp_path, capsys, name: str, content: bytes) -> tuple[int, str, Store]:
    """Run `python -m labeling import` on the file; returns (exit status, stderr, the store)."""
    path = tmp_path / name
    path.write_bytes(content)
    db = tmp_path / "labels.db"
    status = main(["import", str(path), "--db", str(db)])
    return status, capsys.readouterr().err, Store(db)


@pytest.mark.parametrize("name, content, line", FILES)
def test_broken_file_imports_nothing_and_names_the_place(tmp_path, capsys, name, content, line):
    status, err, store = import_file(tmp_path, capsys, name, content)
    with store:
        assert store.tasks() == []
    assert status == 2
    assert err == f"error: 1 problem(s) in {tmp_path / name}, nothing imported:\n{line}\n"


@pytest.mark.parametrize("name, content", [
    ("t.jsonl", b""), ("t.jsonl", b"\n  \n\n"), ("t.csv", b"kind,prompt,response_a,response_b\n"),
])
def test_empty_file_is_an_error_not_imported_0(tmp_path, capsys, name, content):
    status, err, store = import_file(tmp_path, capsys, name, content)
    store.close()
    assert status == 2
    assert err.startswith(f"error: {tmp_path / name} holds no tasks (it is empty); nothing imported.")


@pytest.mark.parametrize("field, value, message", [
    ("prompt", "x" * 30_000_000, "field 'prompt': is 30,000,000 characters long; the limit is 20,000"),
    ("responses", ["a", "y" * (MAX_CHARS["response"] + 1)],
     "field 'responses': response 1 is 20,001 characters long; the limit is 20,000"),
    ("category", "c" * 201, "field 'category': is 201 characters long; the limit is 200"),
    ("meta", {"notes": "m" * 10_000}, "field 'meta': is 10,013 characters long; the limit is 10,000"),
])
def test_over_long_text_is_refused_with_a_short_message(tmp_path, capsys, field, value, message):
    """A 30 MB prompt is refused; the error quotes none of it; the good row is not imported."""
    status, err, store = import_file(tmp_path, capsys, "t.jsonl", jsonl({**GOOD, "id": "ok"},
                                                                       {**GOOD, field: value}))
    with store:
        assert store.tasks() == []
    assert status == 2
    assert err.splitlines()[1] == f"t.jsonl line 2, {message}"
    assert len(err) < 300


def test_csv_cell_beyond_the_csv_module_limit(tmp_path, capsys):
    content = b"kind,prompt,response_a,response_b\npair,p,a,b\npair," + b"x" * 200_000 + b",a,b\n"
    status, err, store = import_file(tmp_path, capsys, "t.csv", content)
    store.close()
    assert status == 2
    assert err.splitlines()[1] == "t.csv line 3: not readable as CSV (field larger than field limit (131072))"


def test_tasks_built_in_python_are_held_to_the_same_limits(tmp_path):
    from labeling.tasks import Task

    ok = Task(id="ok", kind="pair", prompt="p", responses=("a", "b"))
    huge = Task(id="huge", kind="pair", prompt="x" * 30_000_000, responses=("a", "b"))
    with Store(tmp_path / "l.db") as store:
        with pytest.raises(ValueError, match="^1 problem\\(s\\) in the tasks, nothing imported:\ntask 'huge', "
                                             "field 'prompt': is 30,000,000 characters long; the limit is 20,000$"):
            store.import_tasks([ok, huge])
        assert store.tasks() == []


# ---------------------------------------------------------------- bad values sent to the store

@pytest.fixture(params=BACKENDS)
def served(request, tmp_path):
    """(store, ann's served assignment) on each backend; bob has one too."""
    with temp_db(request.param, tmp_path) as db:
        store = Store(db, StoreConfig(seed=0))
        store.import_tasks(tiny_tasks(pairs=2, triads=0, agreement=0, gold=0))
        store.next_assignment("bob")
        yield store, store.next_assignment("ann")
        store.close()


GOOD_SUBMIT = {"annotator": "ann", "choice": "left", "strength": 2, "rationale": "", "tags": []}
SUBMITS = [  # (arguments that differ from GOOD_SUBMIT, error type, message regex)
    ({"choice": "A"}, ValueError, r"^choice must be one of left, right, tie, both_bad, got 'A'$"),
    ({"choice": None}, ValueError, r"^choice must be one of .*, got None$"),
    ({"choice": ["left"]}, ValueError, r"^choice must be one of .*, got \['left'\]$"),
    ({"strength": 0}, ValueError, r"^strength must be 1, 2 or 3 \(slightly/clearly/much\), got 0$"),
    ({"strength": "2"}, ValueError, r"^strength must be 1, 2 or 3 .*, got '2'$"),
    ({"strength": 2.0}, ValueError, r"^strength must be 1, 2 or 3 .*, got 2.0$"),
    ({"strength": True}, ValueError, r"^strength must be 1, 2 or 3 .*, got True$"),
    ({"tags": "hedges"}, ValueError, r"^tags must be a list of strings, got str$"),
    ({"tags": {"hedges": 1}}, ValueError, r"^tags must be a list of strings, got dict$"),
    ({"tags": ["rude"]}, ValueError, r"^unknown tag 'rude'; tags are: "),
    ({"tags": [1]}, ValueError, r"^tags must be a list of strings$"),
    ({"tags": ["hedges", "hedges"]}, ValueError, r"^tag 'hedges' is given twice$"),
    ({"tags": [*TAGS, "hedges"]}, ValueError, r"^tags: 7 given, at most 6 \(each tag once\)$"),
    ({"tags": ["x" * 10 ** 6]}, ValueError, r"^unknown tag 'x{39}\.\.\. \(1,000,002 characters\); tags are"),
    ({"rationale": "r" * 2_000_001}, ValueError, r"^rationale is 2,000,001 characters long; the limit is 2,000$"),
    ({"rationale": "a\x00b"}, ValueError, r"^rationale contains a NUL character at position 1$"),
    ({"rationale": 5}, ValueError, r"^rationale must be a string, got int$"),
    ({"seconds": float("inf")}, ValueError, r"^seconds must be a number >= 0, got inf$"),
    ({"seconds": float("nan")}, ValueError, r"^seconds must be a number >= 0, got nan$"),
    ({"seconds": "5"}, ValueError, r"^seconds must be a number >= 0, got '5'$"),
    ({"annotator": "bob"}, PermissionError, r"^assignment \d+ belongs to another annotator$"),
    ({"annotator": ""}, ValueError, r"^annotator must be a non-empty name$"),
    ({"annotator": "a" * 101}, ValueError, r"^annotator is 101 characters long; the limit is 100$"),
    ({"annotator": "an\nn"}, ValueError, r"^annotator contains the invisible or control character U\+000A"),
    ({"annotator": "an\u200bn"}, ValueError, r"^annotator contains the invisible or control character U\+200B"),
    ({"annotator": "ann\u202e"}, ValueError, r"^annotator contains the invisible or control character U\+202E"),
    ({"annotator": 7}, ValueError, r"^annotator must be a string, got int$"),
]


@pytest.mark.parametrize("changes, error, match", SUBMITS)
def test_bad_submit_is_refused_and_stores_nothing(served, changes, error, match):
    store, a = served
    with pytest.raises(error, match=match):
        store.submit(a.id, **(GOOD_SUBMIT | changes))
    assert store.labels().empty
    assert store.assignment(a.id).status == "served"


@pytest.mark.parametrize("assignment_id, error, match", [
    (10 ** 6, LookupError, r"^no assignment with id 1000000$"),
    (2 ** 70, ValueError, r"^assignment_id must be the integer id of an assignment, got 1180591620717411303424$"),
    (-1, ValueError, r"^assignment_id must be the integer id of an assignment, got -1$"),
    (1.5, ValueError, r"got 1.5$"),
    (True, ValueError, r"got True$"),
    (None, ValueError, r"got None$"),
    ("1; DROP TABLE labels", ValueError, r"got '1; DROP TABLE labels'$"),
    ("١", ValueError, r"got '١'$"),  # an Arabic-Indic digit: int() would take it
])
def test_unknown_or_malformed_assignment_ids(served, assignment_id, error, match):
    store, a = served
    for call in (lambda: store.submit(assignment_id, "ann", "left"),
                 lambda: store.skip(assignment_id, "ann"), lambda: store.assignment(assignment_id)):
        with pytest.raises(error, match=match):
            call()
    assert store.labels().empty and store.assignment(a.id).status == "served"


def test_someone_elses_assignment_cannot_be_labelled_skipped_or_undone(served):
    store, a = served
    with pytest.raises(PermissionError, match="belongs to another annotator"):
        store.submit(a.id, "bob", "left")
    with pytest.raises(PermissionError, match="belongs to another annotator"):
        store.skip(a.id, "bob")
    assert store.undo_last("bob") is None  # bob has labelled nothing: nothing of ann's is undone
    assert store.labels().empty and store.assignment(a.id).status == "served"


@pytest.mark.parametrize("token", [
    "", None, 5, "x" * 10 ** 6, "é" * 43, "' OR '1'='1",
])
def test_invalid_invite_tokens_sign_in_nobody(served, token):
    store, _ = served
    store.create_invite("ann")
    assert store.verify_invite(token) is None


# ---------------------------------------------------------------- paths given to the CLI

def saved_dataset(folder):
    import datasets

    datasets.Dataset.from_list([GOOD]).save_to_disk(str(folder))
    return folder


def test_traversal_in_a_saved_datasets_data_files(tmp_path, capsys):
    folder = saved_dataset(tmp_path / "ds")
    capsys.readouterr()  # save_to_disk's progress bar
    secret = tmp_path / "secret.arrow"
    (folder / next(folder.glob("*.arrow")).name).rename(secret)
    state = json.loads((folder / "state.json").read_text())
    state["_data_files"] = [{"filename": "../secret.arrow"}]
    (folder / "state.json").write_text(json.dumps(state))
    assert main(["import", str(folder), "--db", str(tmp_path / "l.db")]) == 2
    assert capsys.readouterr().err == (f"error: {folder}: state.json names a data file outside the "
                                       "folder; nothing imported\n")


def test_traversal_in_a_dataset_dicts_split_names(tmp_path, capsys):
    folder = tmp_path / "dd"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["../../etc"]}))
    assert main(["import", str(folder), "--db", str(tmp_path / "l.db")]) == 2
    assert capsys.readouterr().err == (f"error: {folder}: dataset_dict.json names a split outside "
                                       "the folder; nothing imported\n")


@pytest.mark.parametrize("src, message", [
    ("../../../../../../etc/passwd", "unsupported task file type ''"),
    ("../../../../../../no/such/tasks.jsonl", "task file not found: ../../../../../../no/such/tasks.jsonl"),
    ("../../../../../../no/such/folder", "../../../../../../no/such/folder: no such file or folder, "
                                         "and not a Hugging Face dataset id ('name' or 'org/name')"),
    ("/abs/../org/name", "/abs/../org/name: no such file or folder, and not a Hugging Face dataset id"),
])
def test_traversal_in_the_import_source_reads_nothing_it_should_not(tmp_path, capsys, monkeypatch, src, message):
    monkeypatch.chdir(tmp_path)
    assert main(["import", src, "--db", str(tmp_path / "l.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_traversal_in_the_split_name(tmp_path, capsys):
    import datasets

    folder = tmp_path / "dd"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([GOOD])}).save_to_disk(str(folder))
    capsys.readouterr()
    assert main(["import", str(folder), "--split", "../../train", "--db", str(tmp_path / "l.db")]) == 2
    assert capsys.readouterr().err == f"error: {folder} has no split '../../train'; its splits are: train\n"


def test_a_name_is_never_a_path(tmp_path, capsys, monkeypatch):
    """`invite ../../evil` names an annotator; nothing is written outside the store's folder."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["invite", "../../evil", "--db", str(work / "l.db")]) == 0
    token = capsys.readouterr().out.strip()
    with Store(work / "l.db") as store:
        assert store.verify_invite(token) == "../../evil"
    assert [p for p in tmp_path.rglob("*") if work not in (p, *p.parents) and p != work.parent] == []


@pytest.mark.parametrize("db, message", [
    ("nosuchdialect://x/y", "is not a database the store can open"),
    (".", "cannot open the label store sqlite:///"),
])
def test_a_bad_database_location_is_one_error_line(tmp_path, capsys, monkeypatch, db, message):
    monkeypatch.chdir(tmp_path)
    assert main(["stats", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_export_onto_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("keep me")
    assert main(["export", "--out", str(tmp_path / "taken"), "--db", str(tmp_path / "l.db")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert (tmp_path / "taken").read_text() == "keep me"


def test_a_file_that_is_not_parquet(tmp_path, capsys):
    status, err, store = import_file(tmp_path, capsys, "t.parquet", b"this is not parquet")
    store.close()
    assert status == 2
    assert err.splitlines()[1].startswith("t.parquet: not a readable Parquet file (")
    assert "Parquet magic bytes not found" in err


def test_parquet_bytes_where_text_belongs(tmp_path):
    pq.write_table(pa.table({"kind": ["pair"], "prompt": [b"\xff"], "response_a": ["a"], "response_b": ["b"]}),
                   tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="t.parquet row 1, field 'prompt': expected a string, got bytes"):
        load_tasks(tmp_path / "t.parquet")
