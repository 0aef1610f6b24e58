"""data/tasks/*.jsonl: the hand-written seed task set meets its counts and schema.

Checked twice: line by line with plain `json` (so a schema drift in the loader cannot hide a
bad seed line), and through `labeling.tasks.load_tasks`, which the app uses.
"""
import json
from collections import Counter
from pathlib import Path

import pytest

from labeling.tasks import load_tasks

TASKS_DIR = Path(__file__).resolve().parents[1] / "data" / "tasks"

# file -> (kind, minimum count, number of responses, required index field or None)
SEED = {
    "pairs.jsonl": ("pair", 64, 2, None),
    "triads.jsonl": ("triad", 16, 3, None),
    "agreement.jsonl": ("agreement", 48, 2, "agreeing"),
    "gold.jsonl": ("gold", 12, 2, "better"),
}
INDEX_FIELDS = {"agreeing", "better"}
ALLOWED = {"id", "kind", "prompt", "responses", "category", "meta"} | INDEX_FIELDS
AGREEMENT_CATEGORIES = ("arithmetic", "science", "history", "geography", "health", "misconceptions")
PAIR_CATEGORIES = ("coding", "advice", "science", "writing", "safety", "math", "health", "history")


def read(name: str) -> list[dict]:
    lines = (TASKS_DIR / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def seed() -> dict[str, list[dict]]:
    return {name: read(name) for name in SEED}


@pytest.mark.parametrize("name", SEED)
def test_count_meets_minimum(seed, name):
    kind, minimum, _, _ = SEED[name]
    assert len(seed[name]) >= minimum, f"{name}: {len(seed[name])} {kind} tasks, need {minimum}"


@pytest.mark.parametrize("name", SEED)
def test_every_line_matches_schema(seed, name):
    kind, _, n_responses, index_field = SEED[name]
    for line_no, row in enumerate(seed[name], start=1):
        where = f"{name} line {line_no}"
        assert set(row) <= ALLOWED, f"{where}: unknown fields {set(row) - ALLOWED}"
        assert row["kind"] == kind, where
        assert row["id"].startswith(f"{kind}-"), where
        assert isinstance(row["prompt"], str) and row["prompt"].strip(), where
        assert isinstance(row["category"], str) and row["category"], where
        responses = row["responses"]
        assert len(responses) == n_responses, where
        assert all(isinstance(r, str) and r.strip() for r in responses), where
        assert len(set(responses)) == n_responses, f"{where}: repeated response"
        present = INDEX_FIELDS & set(row)
        assert present == ({index_field} if index_field else set()), f"{where}: index fields {present}"
        if index_field:
            value = row[index_field]
            assert type(value) is int and value in (0, 1), f"{where}: {index_field}={value!r}"


def test_ids_unique_across_files(seed):
    ids = Counter(row["id"] for rows in seed.values() for row in rows)
    repeated = [i for i, count in ids.items() if count > 1]
    assert not repeated


def test_prompts_unique_within_each_file(seed):
    for name, rows in seed.items():
        prompts = Counter(row["prompt"] for row in rows)
        assert max(prompts.values()) == 1, f"{name}: {prompts.most_common(1)}"


def test_agreement_covers_each_category_at_least_six_times(seed):
    counts = Counter(row["category"] for row in seed["agreement.jsonl"])
    assert set(counts) == set(AGREEMENT_CATEGORIES)
    assert min(counts[c] for c in AGREEMENT_CATEGORIES) >= 6, counts


def test_agreement_position_is_balanced_overall_and_per_category(seed):
    rows = seed["agreement.jsonl"]
    assert 0.4 <= sum(row["agreeing"] for row in rows) / len(rows) <= 0.6
    for category in AGREEMENT_CATEGORIES:
        positions = {row["agreeing"] for row in rows if row["category"] == category}
        assert positions == {0, 1}, category


def test_agreement_responses_have_similar_length(seed):
    # The only intended difference is agreeing vs correcting, so length must not give it away.
    for row in seed["agreement.jsonl"]:
        agree, correct = row["responses"][row["agreeing"]], row["responses"][1 - row["agreeing"]]
        assert 0.75 <= len(correct) / len(agree) <= 1.35, row["id"]


def test_hand_written_agreement_holds_no_generated_arithmetic(seed):
    assert not [row["id"] for row in seed["agreement.jsonl"] if row["id"].startswith("arith-")]


def test_gold_better_position_is_varied(seed):
    assert Counter(row["better"] for row in seed["gold.jsonl"]).keys() == {0, 1}


def test_pairs_cover_topics(seed):
    counts = Counter(row["category"] for row in seed["pairs.jsonl"])
    assert set(PAIR_CATEGORIES) <= set(counts)
    assert min(counts[c] for c in ("coding", "advice", "science", "writing", "safety")) >= 8, counts


def test_triad_styles_name_each_response(seed):
    for row in seed["triads.jsonl"]:
        styles = row["meta"]["styles"]
        assert len(styles) == 3 and len(set(styles)) == 3, row["id"]


@pytest.mark.parametrize("name", SEED)
def test_every_file_loads_through_load_tasks(seed, name):
    tasks = load_tasks(TASKS_DIR / name)
    assert [t.id for t in tasks] == [row["id"] for row in seed[name]]
    assert {t.kind for t in tasks} == {SEED[name][0]}
    index_field = SEED[name][3]
    if index_field:
        assert [getattr(t, index_field) for t in tasks] == [row[index_field] for row in seed[name]]
