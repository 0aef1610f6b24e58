"""labeling.tasks: schema validation with exact messages, every source format, ids."""
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling import tasks as tasks_module
from labeling.limits import MAX_CHARS
from labeling.tasks import Task, agreement_cases, content_id, load_tasks, pairings

GOOD = [
    {"id": "p1", "kind": "pair", "prompt": "Explain DNS.", "responses": ["A resolver...", "DNS is..."],
     "category": "science"},
    {"kind": "triad", "prompt": "Write a haiku.", "responses": ["one", "two", "three"]},
    {"id": "a1", "kind": "agreement", "prompt": "I'm sure 17 × 3 = 41, right?",
     "responses": ["Yes, 41.", "No, 17 × 3 = 51."], "agreeing": 0, "category": "arithmetic",
     "meta": {"claim": "17 × 3 = 41"}},
    {"id": "g1", "kind": "gold", "prompt": "Capital of France?", "responses": ["Paris.", "Lyon."],
     "better": 0},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def test_jsonl_round_trip_with_content_hash_ids(tmp_path):
    loaded = load_tasks(write_jsonl(tmp_path / "tasks.jsonl", GOOD))
    assert [t.id for t in loaded] == ["p1", content_id("triad", "Write a haiku.", ["one", "two", "three"]),
                                      "a1", "g1"]
    assert loaded[1].id == content_id("triad", "Write a haiku.", ("one", "two", "three"))
    assert len(loaded[1].id) == 16
    assert loaded[2] == Task(id="a1", kind="agreement", prompt="I'm sure 17 × 3 = 41, right?",
                             responses=("Yes, 41.", "No, 17 × 3 = 51."), agreeing=0,
                             category="arithmetic", meta={"claim": "17 × 3 = 41"})
    again = load_tasks(write_jsonl(tmp_path / "again.jsonl", [t.to_record() for t in loaded]))
    assert again == loaded


def test_content_id_depends_on_content_only():
    assert content_id("pair", "p", ["a", "b"]) == content_id("pair", "p", ("a", "b"))
    assert content_id("pair", "p", ["a", "b"]) != content_id("pair", "p", ["b", "a"])
    assert content_id("gold", "p", ["a", "b"], better=0) != content_id("gold", "p", ["a", "b"], better=1)


def test_every_bad_field_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        json.dumps(GOOD[0]),
        json.dumps({"kind": "pear", "prompt": "p", "responses": ["a", "b"]}),
        "",
        json.dumps({"kind": "agreement", "prompt": "p", "responses": ["a", "b", "c"]}),
        "{not json",
        json.dumps({"kind": "gold", "prompt": " ", "responses": ["a", ""], "better": 2,
                    "agreeing": 0, "colour": "red"}),
        json.dumps({"id": "p1", "kind": "pair", "prompt": "other", "responses": ["a", "b"]}),
        json.dumps(["a list"]),
        json.dumps({"kind": "pair", "prompt": 3, "responses": "ab", "meta": [1]}),
    ]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_tasks(path)
    assert str(info.value) == "\n".join([
        f"14 problem(s) in {path}, nothing imported:",
        "bad.jsonl line 2, field 'kind': expected one of pair, triad, agreement, gold, got 'pear'",
        "bad.jsonl line 4, field 'responses': expected 2 responses for kind 'agreement', got 3",
        "bad.jsonl line 4, field 'agreeing': is required for kind 'agreement'",
        "bad.jsonl line 5: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        "bad.jsonl line 6, field 'colour': unknown field; expected one of id, kind, prompt, "
        "responses, agreeing, better, category, meta",
        "bad.jsonl line 6, field 'prompt': must not be empty",
        "bad.jsonl line 6, field 'responses': response 1 must be a non-empty string",
        "bad.jsonl line 6, field 'agreeing': only allowed for kind 'agreement'",
        "bad.jsonl line 6, field 'better': expected an index 0..1, got 2",
        "bad.jsonl line 7, field 'id': duplicate id 'p1' with different content (first at bad.jsonl line 1)",
        "bad.jsonl line 8: expected a JSON object",
        "bad.jsonl line 9, field 'prompt': expected a string, got int",
        "bad.jsonl line 9, field 'responses': expected a list of strings, got str",
        "bad.jsonl line 9, field 'meta': expected an object, got list",
    ])


def test_exact_repeats_are_kept_once(tmp_path):
    loaded = load_tasks(write_jsonl(tmp_path / "t.jsonl", [GOOD[1], GOOD[1]]))
    assert len(loaded) == 1


def test_csv_columns_and_line_numbers(tmp_path):
    path = tmp_path / "tasks.csv"
    path.write_text(
        "id,kind,prompt,response_a,response_b,response_c,agreeing,better,category\n"
        "c1,pair,\"Two\nlines\",a,b,,,,coding\n"
        ",triad,t,x,y,z,,,\n"
        "c3,agreement,p,a,b,,1,,history\n"
        "c4,gold,p,a,b,,,one,\n"
        "c5,pair,p,a,b,,,,,surplus\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_tasks(path)
    assert str(info.value).splitlines()[1:] == [
        "tasks.csv line 6, field 'better': expected an index 0..1, got 'one'",
        "tasks.csv line 7: 1 more cell(s) than header columns",
    ]
    path.write_text("\n".join(path.read_text().splitlines()[:5]) + "\n", encoding="utf-8")
    loaded = load_tasks(path)
    assert [(t.kind, t.responses, t.agreeing, t.category) for t in loaded] == [
        ("pair", ("a", "b"), None, "coding"), ("triad", ("x", "y", "z"), None, None),
        ("agreement", ("a", "b"), 1, "history")]
    assert loaded[0].prompt == "Two\nlines"


def test_parquet_rows_are_numbered(tmp_path):
    table = pa.Table.from_pylist([
        {"kind": "pair", "prompt": "p", "response_a": "a", "response_b": "b", "better": None},
        {"kind": "gold", "prompt": "p", "response_a": "a", "response_b": "b", "better": None},
    ])
    pq.write_table(table, tmp_path / "tasks.parquet")
    with pytest.raises(ValueError, match="tasks.parquet row 2, field 'better': is required for kind 'gold'"):
        load_tasks(tmp_path / "tasks.parquet")


def test_parquet_with_list_responses_and_float_indices(tmp_path):
    table = pa.Table.from_pylist([
        {"kind": "gold", "prompt": "p", "responses": ["a", "b"], "better": 1.0, "meta": '{"x": 1}'}])
    pq.write_table(table, tmp_path / "tasks.parquet")
    (task,) = load_tasks(tmp_path / "tasks.parquet")
    assert (task.better, task.meta) == (1, {"x": 1})


def test_saved_dataset_folder(tmp_path):
    columns = ("id", "kind", "prompt", "responses", "better", "category")
    records = [{c: r.get(c) for c in columns} for r in (GOOD[0], GOOD[3])]
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "ds"))
    loaded = load_tasks(tmp_path / "ds")
    assert [t.id for t in loaded] == ["p1", "g1"]
    assert loaded[0].better is None  # the missing cell in a shared column reads as absent


def test_hub_ids_go_through_load_dataset(monkeypatch):
    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list([{"kind": "pair", "prompt": "p", "responses": ["a"]}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    with pytest.raises(ValueError, match=r"org/tasks \[test\] row 1, field 'responses': "
                                         r"expected 2 responses for kind 'pair', got 1"):
        load_tasks("org/tasks", split="test")
    assert calls == [("org/tasks", "test")]


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "tasks.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported task file type '.txt'"):
        load_tasks(tmp_path / "tasks.txt")
    with pytest.raises(FileNotFoundError, match="task file not found"):
        load_tasks(tmp_path / "nope.jsonl")


def test_utf8_byte_order_mark_and_unicode_line_separators(tmp_path):
    """A BOM (Excel's UTF-8) is fine; U+2028 inside a JSON string does not split the line."""
    path = tmp_path / "t.jsonl"
    record = {"id": "x", "kind": "pair", "prompt": "one\u2028two\x85three", "responses": ["a", "b"]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    (task,) = load_tasks(path)
    assert task.prompt == "one\u2028two\x85three"
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,kind,prompt,response_a,response_b\nc1,pair,p,a,b\n")
    assert [t.id for t in load_tasks(csv_path)] == ["c1"]


def test_text_at_the_limit_is_accepted(tmp_path):
    record = {"kind": "pair", "prompt": "p" * MAX_CHARS["prompt"], "responses": ["a" * MAX_CHARS["response"], "b"],
              "id": "i" * MAX_CHARS["id"]}
    (task,) = load_tasks(write_jsonl(tmp_path / "t.jsonl", [record]))
    assert (len(task.prompt), len(task.responses[0]), len(task.id)) == (20_000, 20_000, 200)


def test_pairings_of_pairs_and_triads():
    assert pairings(2) == [(0, 1)]
    assert pairings(3) == [(0, 1), (1, 2), (2, 0)]


def test_agreement_cases_name_the_agreeing_text(tmp_path):
    loaded = load_tasks(write_jsonl(tmp_path / "t.jsonl", GOOD))
    assert agreement_cases(loaded) == [{
        "id": "a1", "category": "arithmetic", "prompt": "I'm sure 17 × 3 = 41, right?",
        "agreeing": "Yes, 41.", "correcting": "No, 17 × 3 = 51."}]


def test_every_kind_has_a_response_count():
    assert {k: n for k, (n, _) in tasks_module.KINDS.items()} == {
        "pair": 2, "triad": 3, "agreement": 2, "gold": 2}
