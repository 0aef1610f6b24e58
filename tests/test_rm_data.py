import json

import datasets
import pandas as pd
import pytest

from rm.data import DataError, load_preferences, split_transcript


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


EXPLICIT = [{"prompt": "p1", "chosen": "good", "rejected": "bad", "margin": 1.5},
            {"prompt": "p2", "chosen": "fine", "rejected": "meh", "tie": True}]


def test_explicit_jsonl_with_optional_columns(tmp_path):
    ds = load_preferences(_jsonl(tmp_path / "p.jsonl", EXPLICIT))
    assert ds.column_names == ["prompt", "chosen", "rejected", "margin", "tie"]
    assert ds["margin"] == [1.5, 0.0] and ds["tie"] == [False, True] and ds["chosen"] == ["good", "fine"]


def test_csv_parquet_dataset_and_export_folder_agree(tmp_path):
    frame = pd.DataFrame(EXPLICIT)
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "export"))
    expected = [{"prompt": "p1", "chosen": "good", "rejected": "bad", "margin": 1.5, "tie": False},
                {"prompt": "p2", "chosen": "fine", "rejected": "meh", "margin": 0.0, "tie": True}]
    for src in (tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "export", datasets.Dataset.from_pandas(frame)):
        assert load_preferences(src).to_list() == expected, src


def test_implicit_hh_rlhf_split_at_last_shared_assistant_turn(tmp_path):
    chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sure, here you go."
    rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant: Sorry, no."
    ds = load_preferences(_jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}]))
    assert ds[0]["prompt"] == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant:"
    assert (ds[0]["chosen"], ds[0]["rejected"]) == ("Sure, here you go.", "Sorry, no.")
    # responses that share their first word still split at the Assistant turn
    assert split_transcript("\n\nHuman: q\n\nAssistant: I can", "\n\nHuman: q\n\nAssistant: I cannot")[1:] == ("I can", "I cannot")


def test_conversational_explicit_and_implicit():
    msgs = lambda *pairs: [{"role": r, "content": c} for r, c in pairs]  # noqa: E731
    explicit = datasets.Dataset.from_list([{"prompt": msgs(("user", "q")), "chosen": msgs(("assistant", "yes")),
                                            "rejected": msgs(("assistant", "no"))}])
    assert load_preferences(explicit)[0] == {"prompt": "q", "chosen": "yes", "rejected": "no", "margin": 0.0, "tie": False}
    implicit = datasets.Dataset.from_list([{"chosen": msgs(("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "yes")),
                                            "rejected": msgs(("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "no"))}])
    row = load_preferences(implicit)[0]
    assert row["prompt"] == "\n\nHuman: q\n\nAssistant: a\n\nHuman: q2" and (row["chosen"], row["rejected"]) == ("yes", "no")


def test_max_pairs(tmp_path):
    assert len(load_preferences(_jsonl(tmp_path / "p.jsonl", EXPLICIT), max_pairs=1)) == 1


@pytest.mark.parametrize("bad, match", [
    ({"prompt": "p", "chosen": "", "rejected": "x"}, r"p.jsonl: row 2, field 'chosen': expected a non-empty string"),
    ({"prompt": "p", "chosen": "x", "rejected": None}, r"row 2, field 'rejected'"),
    ({"prompt": "p", "chosen": "x", "rejected": "y", "margin": "big"}, r"row 2, field 'margin': expected a number"),
    ({"prompt": "p", "chosen": "x", "rejected": "y", "tie": "maybe"}, r"row 2, field 'tie': expected a boolean"),
])
def test_bad_rows_name_row_and_field(tmp_path, bad, match):
    with pytest.raises(DataError, match=match):
        load_preferences(_jsonl(tmp_path / "p.jsonl", [EXPLICIT[0], bad]))


def test_missing_columns_and_unsplittable_transcripts(tmp_path):
    with pytest.raises(DataError, match=r"missing column\(s\) \['rejected'\]"):
        load_preferences(_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "x"}]))
    with pytest.raises(DataError, match=r"row 1, field 'chosen': implicit format"):
        load_preferences(_jsonl(tmp_path / "b.jsonl", [{"chosen": "Human: a", "rejected": "Human: b"}]))
    with pytest.raises(DataError, match="not a preference file"):
        load_preferences((tmp_path / "c.txt").write_text("x") and tmp_path / "c.txt")


def test_real_hh_rlhf_file(shared_data):
    ds = load_preferences(shared_data / "hh-rlhf" / "harmless-base-test.jsonl.gz", max_pairs=50)
    assert len(ds) == 50 and all(p.endswith("\n\nAssistant:") for p in ds["prompt"])
    assert sum(c != r for c, r in zip(ds["chosen"], ds["rejected"])) >= 45


@pytest.mark.parametrize("fmt", ["hf", "jsonl", "parquet"])
def test_labeling_export_folder(tmp_path, fmt):
    from labeling.export import ExportConfig, export
    from labeling.store import open_store
    from labeling.tasks import load_tasks

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "kind": "pair", "prompt": "what is two plus two?",
                                 "responses": ["four", "five"]}) + "\n")
    store = open_store(str(tmp_path / "labels.db"))
    store.import_tasks(load_tasks(tasks))
    first = store.next_assignment("ann")
    store.submit(first.id, "ann", "left" if first.left == "four" else "right", strength=2)
    export(store, ExportConfig(out=str(tmp_path / "export"), format=fmt))
    ds = load_preferences(tmp_path / "export")
    assert ds.to_list() == [{"prompt": "what is two plus two?", "chosen": "four", "rejected": "five",
                             "margin": ds[0]["margin"], "tie": False}]
    assert ds[0]["margin"] > 0  # "clearly" better carries a margin


def test_missing_file_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_preferences(str(tmp_path / "pairs.jsonll" / "x.jsonl"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_preferences("pairs.jsonl")


def test_best_of_n_rows_become_every_pair_with_their_group_and_subset(tmp_path):
    rows = [{"prompt": "p1", "chosen": ["good"], "rejected": ["bad", "worse"], "subset": "Math"},
            {"prompt": "p2", "chosen": "fine", "rejected": ["meh"], "subset": "Focus"}]
    ds = load_preferences(_jsonl(tmp_path / "rb2.jsonl", rows))
    assert ds.to_list() == [
        {"prompt": "p1", "chosen": "good", "rejected": "bad", "margin": 0.0, "tie": False, "subset": "Math", "group": 1},
        {"prompt": "p1", "chosen": "good", "rejected": "worse", "margin": 0.0, "tie": False, "subset": "Math", "group": 1},
        {"prompt": "p2", "chosen": "fine", "rejected": "meh", "margin": 0.0, "tie": False, "subset": "Focus", "group": 2}]
    with pytest.raises(DataError, match=r"row 1, field 'rejected': best-of-n format: expected a non-empty string"):
        load_preferences(_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "chosen": "a", "rejected": ["b", ""]}]))
    with pytest.raises(DataError, match=r"row 2, field 'subset': is missing; every row needs one"):
        load_preferences(_jsonl(tmp_path / "sub.jsonl", [{**EXPLICIT[0], "subset": "a"}, {**EXPLICIT[1], "subset": None}]))


def test_an_empty_file_says_it_has_no_rows(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty.jsonl: no rows; expected preference rows with prompt, chosen and rejected"):
        load_preferences(tmp_path / "empty.jsonl")
