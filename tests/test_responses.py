"""analysis.responses: response tables and preference rows become (prompt, response) rows."""
import json

import pytest

from analysis.responses import load_responses, responses_from_pairs


def test_responses_from_pairs_interleaves_chosen_and_rejected():
    rows = responses_from_pairs(["p", "q"], ["c1", "c2"], ["r1", "r2"])
    assert rows["response"].tolist() == ["c1", "r1", "c2", "r2"]
    assert rows["side"].tolist() == ["chosen", "rejected"] * 2
    assert rows["pair"].tolist() == [0, 0, 1, 1]


def test_load_responses_reads_prompt_response_tables(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n" for i in range(10)))
    rows = load_responses(path)
    assert rows["response"].tolist() == [f"r{i}" for i in range(10)]
    assert rows["side"].isna().all()
    sub = load_responses(path, max_rows=4, seed=1)
    assert len(sub) == 4 and sub["response"].tolist() == sorted(sub["response"].tolist(), key=lambda s: int(s[1:]))
    assert sub["response"].tolist() == load_responses(path, max_rows=4, seed=1)["response"].tolist()
    csv = tmp_path / "r.csv"
    csv.write_text("prompt,response\nq,\"a, b\"\n")
    assert load_responses(csv)["response"].tolist() == ["a, b"]


def test_load_responses_requires_a_prompt_column(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"response": "x"}) + "\n")
    with pytest.raises(ValueError, match="no 'prompt' column"):
        load_responses(path)


def test_load_responses_uses_both_sides_of_preference_files(tmp_path):
    path = tmp_path / "prefs.jsonl"
    pairs = [{"prompt": f"p{i}", "chosen": f"good{i}", "rejected": f"bad{i}"} for i in range(6)]
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    rows = load_responses(path)
    assert rows["response"].tolist()[:4] == ["good0", "bad0", "good1", "bad1"]
    assert rows["side"].tolist()[:2] == ["chosen", "rejected"]
    sub = load_responses(path, max_rows=4, seed=0)
    assert len(sub) == 4 and sub["pair"].tolist() == [0, 0, 1, 1]
