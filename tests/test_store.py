"""labeling.store: durability, idempotent submit, assignment rules, concurrency.

Every store test runs on SQLite and, when env RMLAB_TEST_PG_URL is set, on PostgreSQL.
"""
import hashlib
import os
import threading
import time

import pytest
import sqlalchemy as sa

from labeling import seed
from labeling.store import (MARGINS, RateLimited, Store, StoreConfig, assignments_t, open_store,
                            pairings_t, parse_rate, resolve_url)
from labeling.tasks import Task
from labeling.testing import PG_ENV, temp_db, temp_store, tiny_tasks

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set"))]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def make_store(backend, tmp_path):
    """make_store(tasks, **config) -> a Store with those tasks, on this test's backend."""
    with temp_db(backend, tmp_path) as db:
        opened = []

        def make(tasks=(), **config):
            store = Store(db, StoreConfig(seed=0, **config))
            store.import_tasks(tasks)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()


def label_all(store, annotator, choice="left"):
    """Label everything `annotator` is served; returns the assignments in order."""
    served = []
    while (a := store.next_assignment(annotator)) is not None:
        store.submit(a.id, annotator, choice, 2)
        served.append(a)
    return served


# ---------------------------------------------------------------- durability, submit

def run_together(calls) -> None:
    """Start each call in its own thread at once, then wait for all of them."""
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_label_survives_reopening_the_store(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    a = store.next_assignment("ann")
    label = store.submit(a.id, "ann", "right", 3, rationale="clearer", tags=["too long"],
                         seconds=12.5)
    store.close()
    reopened = Store(store.url)
    frame = reopened.labels()
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.label_id, row.choice, row.strength, row.margin) == (label.id, "right", 3, 1.0)
    assert (row.rationale, row.tags, row.seconds) == ("clearer", ["too long"], 12.5)
    assert row.winner == a.right_index and row.chosen == a.right and row.rejected == a.left
    reopened.close()


def test_submit_is_idempotent_per_assignment(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    a = store.next_assignment("ann")
    first = store.submit(a.id, "ann", "left", 1)
    again = store.submit(a.id, "ann", "right", 3, rationale="changed my mind")
    assert again == first
    assert len(store.labels()) == 1
    assert store.labels().iloc[0].choice == "left"


def test_concurrent_submits_store_one_label(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    a = store.next_assignment("ann")
    others = [Store(store.url) for _ in range(4)]  # separate engines, like separate processes
    results = []
    run_together([lambda s=s: results.append(s.submit(a.id, "ann", "left")) for s in others])
    for s in others:
        s.close()
    assert len(results) == 4 and len({r.id for r in results}) == 1
    assert len(store.labels()) == 1


def test_margin_follows_strength_and_ties_have_none(make_store):
    store = make_store(tiny_tasks(pairs=4, triads=0, agreement=0, gold=0))
    margins = {}
    for choice, strength in [("left", 1), ("right", 2), ("tie", 3), ("both_bad", 3)]:
        a = store.next_assignment("ann")
        margins[choice] = store.submit(a.id, "ann", choice, strength).margin
    assert margins == {"left": MARGINS[1], "right": MARGINS[2], "tie": 0.0, "both_bad": 0.0}
    frame = store.labels().set_index("choice")
    assert frame.loc["tie"].tie and not frame.loc["tie"].both_bad
    assert frame.loc["both_bad"].both_bad and frame.loc["both_bad"].tie  # nobody won
    assert frame.loc["tie"].chosen == frame.loc["tie"].left  # shown order for ties


@pytest.mark.parametrize("kwargs, error, match", [
    ({"choice": "A"}, ValueError, "choice must be one of left, right, tie, both_bad"),
    ({"strength": 4}, ValueError, "strength must be 1, 2 or 3"),
    ({"strength": True}, ValueError, "strength must be 1, 2 or 3"),
    ({"seconds": -1.0}, ValueError, "seconds must be a number >= 0"),
    ({"annotator": "bob"}, PermissionError, "belongs to another annotator"),
    ({"annotator": "  "}, ValueError, "annotator must be a non-empty name"),
])
def test_submit_rejects_bad_input(make_store, kwargs, error, match):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    a = store.next_assignment("ann")
    args = {"annotator": "ann", "choice": "left", "strength": 2} | kwargs
    with pytest.raises(error, match=match):
        store.submit(a.id, **args)
    assert store.labels().empty


def test_unknown_assignment_is_a_lookup_error(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    with pytest.raises(LookupError, match="no assignment with id 99"):
        store.submit(99, "ann", "left")


# ---------------------------------------------------------------- assignment rules

def test_outstanding_assignment_is_served_again(make_store):
    store = make_store(tiny_tasks(pairs=3, triads=0, agreement=0, gold=0))
    first = store.next_assignment("ann")
    assert store.next_assignment("ann") == first
    assert store.progress("ann")["outstanding"] == 1


def test_each_pairing_gets_k_distinct_annotators_and_nobody_twice(make_store):
    store = make_store(tiny_tasks(pairs=4, triads=1, agreement=1, gold=0), labels_per_task=2)
    annotators = ["ann", "bob", "cat"]
    served = {name: label_all(store, name) for name in annotators}
    frame = store.labels()
    per_pairing = frame.groupby(["task_id", "pair_index"]).annotator.agg(list)
    assert len(per_pairing) == 4 + 3 + 1  # every pairing labeled
    assert all(len(names) == 2 and len(set(names)) == 2 for names in per_pairing)
    for name, assignments in served.items():
        keys = [(a.task_id, a.pair_index) for a in assignments]
        assert len(keys) == len(set(keys)), f"{name} got a pairing twice"
    assert store.next_assignment("dan") is None  # all full


def test_triad_pairings_are_never_back_to_back(make_store):
    store = make_store(tiny_tasks(pairs=3, triads=2, agreement=0, gold=0))
    served = label_all(store, "ann")
    order = [a.task_id for a in served]
    assert len(served) == 3 + 2 * 3
    assert all(x != y for x, y in zip(order, order[1:])), order
    for triad in ("triad-0", "triad-1"):
        assert sorted(a.pair_index for a in served if a.task_id == triad) == [0, 1, 2]


def test_shown_order_is_random_and_recorded(make_store):
    store = make_store(tiny_tasks(pairs=24, triads=0, agreement=0, gold=0))
    served = label_all(store, "ann", choice="left")
    assert {a.shown_order for a in served} == {"ab", "ba"}
    for a in served:
        task = next(t for t in store.tasks() if t.id == a.task_id)
        assert (a.left, a.right) == (task.responses[a.left_index], task.responses[a.right_index])
        assert a.shown_order == "ab"[a.left_index] + "ab"[a.right_index]
    frame = store.labels()
    assert (frame.winner == frame.left_index).all()  # "left" stored as the response shown left


def test_gold_tasks_are_interleaved(make_store):
    store = make_store(tiny_tasks(pairs=6, triads=0, agreement=0, gold=2), gold_every=3)
    kinds = [a.kind for a in label_all(store, "ann")]
    assert kinds == ["pair", "pair", "gold", "pair", "pair", "gold", "pair", "pair"]


def test_gold_is_not_capped_by_default(make_store):
    store = make_store(tiny_tasks(pairs=0, triads=0, agreement=0, gold=1), labels_per_task=1)
    for name in ("ann", "bob", "cat"):
        assert len(label_all(store, name)) == 1


def test_skip_frees_the_slot_and_undo_brings_it_back(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0), labels_per_task=1)
    a = store.next_assignment("ann")
    assert store.next_assignment("bob") is None  # ann holds the only slot
    store.skip(a.id, "ann")
    store.skip(a.id, "ann")  # no-op
    assert store.next_assignment("ann") is None  # never served again after a skip
    assert store.progress("ann") == {"annotator": "ann", "done": 0, "skipped": 1,
                                     "outstanding": 0, "remaining": 0, "total": 1}
    b = store.next_assignment("bob")
    assert b.task_id == a.task_id
    with pytest.raises(ValueError, match="has since collected 1 labels"):
        store.undo_last("ann")
    store.skip(b.id, "bob")
    assert store.undo_last("ann").id == a.id
    assert store.next_assignment("ann").id == a.id


def test_undo_last_deletes_the_label_and_reserves_it(make_store):
    store = make_store(tiny_tasks(pairs=2, triads=0, agreement=0, gold=0))
    first = store.next_assignment("ann")
    store.submit(first.id, "ann", "left")
    second = store.next_assignment("ann")
    store.submit(second.id, "ann", "tie")
    undone = store.undo_last("ann")
    assert undone.id == second.id and undone.status == "served"
    assert list(store.labels().assignment_id) == [first.id]
    assert store.next_assignment("ann").id == second.id
    store.submit(second.id, "ann", "right")
    assert list(store.labels().choice) == ["left", "right"]
    assert store.undo_last("nobody") is None


def test_skipped_assignment_cannot_be_submitted(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    a = store.next_assignment("ann")
    store.skip(a.id, "ann")
    with pytest.raises(ValueError, match="was skipped"):
        store.submit(a.id, "ann", "left")


def test_lapsed_lease_lets_another_annotator_in_without_exceeding_k(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0),
                       labels_per_task=1, lease_seconds=0)
    a = store.next_assignment("ann")
    b = store.next_assignment("bob")  # ann's lease lapsed at once
    assert b is not None and b.task_id == a.task_id
    store.submit(b.id, "bob", "left")
    with pytest.raises(ValueError, match="expired and its task already has 1 labels"):
        store.submit(a.id, "ann", "left")
    assert list(store.labels().annotator) == ["bob"]


def test_concurrent_annotators_never_overfill_a_pairing(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0), labels_per_task=2)
    stores = [Store(store.url, StoreConfig(labels_per_task=2)) for _ in range(6)]
    got = []
    run_together([lambda s=s, i=i: got.append(s.next_assignment(f"a{i}")) for i, s in enumerate(stores)])
    for s in stores:
        s.close()
    assert sum(a is not None for a in got) == 2


def test_progress_counts_remaining_work(make_store):
    store = make_store(tiny_tasks(pairs=2, triads=1, agreement=0, gold=0))
    assert store.progress("ann")["remaining"] == 5
    a = store.next_assignment("ann")
    store.submit(a.id, "ann", "left")
    assert store.progress("ann") == {"annotator": "ann", "done": 1, "skipped": 0,
                                     "outstanding": 0, "remaining": 4, "total": 5}


def test_submit_and_next_is_one_step(make_store):
    store = make_store(tiny_tasks(pairs=3, triads=0, agreement=0, gold=0))
    first = store.next_assignment("ann")
    label, second = store.submit_and_next(first.id, "ann", "right", 3, rationale="r")
    assert (label.assignment_id, label.choice, label.strength, label.rationale) == (first.id, "right", 3, "r")
    assert second is not None and second.id != first.id and second.status == "served"
    assert store.next_assignment("ann") == second  # outstanding: served again
    again, same = store.submit_and_next(first.id, "ann", "left")  # a repeat stores nothing new
    assert again == label and same == second
    with pytest.raises(ValueError, match="choice must be one of"):
        store.submit_and_next(second.id, "ann", "sideways")
    assert store.progress("ann") == {"annotator": "ann", "done": 1, "skipped": 0, "outstanding": 1,
                                     "remaining": 2, "total": 3}
    assert list(store.labels().assignment_id) == [first.id]


def held_by_recount(store) -> dict:
    """(task_id, pair_index) -> (held column, slots actually held by served/done assignments)."""
    a = assignments_t.c
    with store.engine.connect() as conn:
        held = {(r.task_id, r.pair_index): r.held for r in conn.execute(sa.select(pairings_t))}
        counted = dict.fromkeys(held, 0)
        for r in conn.execute(sa.select(a.task_id, a.pair_index).where(a.status.in_(["served", "done"]))):
            counted[(r.task_id, r.pair_index)] += 1
    return {key: (held[key], counted[key]) for key in held}


def test_pairings_table_follows_every_change(make_store):
    """The triggers keep `held` equal to a recount through serve, submit, skip, undo, expiry."""
    store = make_store(tiny_tasks(pairs=3, triads=1, agreement=1, gold=1), labels_per_task=2)
    for name in ("ann", "bob", "cat"):
        a = store.next_assignment(name)
        store.submit(a.id, name, "left")
        b = store.next_assignment(name)
        store.skip(b.id, name)
        store.next_assignment(name)
    store.undo_last("ann")  # undo a skip: the slot is held again if free
    store.undo_last("bob")
    lapsed = make_store(lease_seconds=0)  # another process with a zero lease expires the rest
    lapsed.next_assignment("dan")
    counts = held_by_recount(store)
    assert len(counts) == 3 + 3 + 1 + 1
    assert all(held == counted for held, counted in counts.values()), counts
    assert sum(held for held, _ in counts.values()) >= 3  # not trivially all zero


def test_progress_counts_open_work_without_scanning_it(make_store):
    """remaining = outstanding + pairings with a free slot this annotator never had."""
    store = make_store(tiny_tasks(pairs=3, triads=1, agreement=0, gold=1), labels_per_task=1)
    assert store.progress("ann")["remaining"] == 3 + 3 + 1
    a = store.next_assignment("bob")  # bob holds one slot: ann can't get that pairing
    assert store.progress("ann")["remaining"] == 6 + (a.kind == "gold")  # gold is uncapped
    store.skip(a.id, "bob")
    assert store.progress("ann")["remaining"] == 7
    assert store.progress("bob") == {"annotator": "bob", "done": 0, "skipped": 1, "outstanding": 0,
                                     "remaining": 6, "total": 7}


# ---------------------------------------------------------------- quality signals

def test_fast_labels_are_flagged_by_min_seconds(make_store):
    store = make_store(tiny_tasks(pairs=3, triads=0, agreement=0, gold=0), min_seconds=3.0)
    for seconds in (2.99, 3.0, None):  # None: the server's clock, milliseconds here
        a = store.next_assignment("ann")
        store.submit(a.id, "ann", "left", seconds=seconds)
    frame = store.labels()
    assert frame.fast.tolist() == [True, False, True]
    assert frame.seconds.iloc[2] < 3.0


def test_rate_limit_refuses_a_burst_across_processes(make_store):
    store = make_store(tiny_tasks(pairs=5, triads=0, agreement=0, gold=0), rate_limit=3, rate_window=60)
    other = make_store(rate_limit=3, rate_window=60)  # another server on the same database
    labelled, start = [], time.monotonic()
    for s in (store, other, store):
        a = s.next_assignment("ann")
        labelled.append(s.submit(a.id, "ann", "left"))
    a = other.next_assignment("ann")
    with pytest.raises(RateLimited, match=r"^3 labels in the last 60 seconds is faster than anyone reads; "
                                          r"wait \d+ s, then submit again \(the limit is RMLAB_RATE_LIMIT=3/60\)$") as info:
        other.submit(a.id, "ann", "left")
    # the oldest of the 3 leaves the window 60 s after it was stored (however slow this machine is)
    assert 60 - (time.monotonic() - start) - 1 <= info.value.retry_after <= 60
    assert isinstance(info.value, ValueError)  # shown like any other refusal
    assert len(store.labels()) == 3 and store.assignment(a.id).status == "served"
    assert store.submit(labelled[0].assignment_id, "ann", "right") == labelled[0]  # a repeat is not new
    b = store.next_assignment("bob")
    assert store.submit(b.id, "bob", "left").annotator == "bob"  # per annotator


def test_rate_limit_window_slides(make_store):
    store = make_store(tiny_tasks(pairs=3, triads=0, agreement=0, gold=0), rate_limit=1, rate_window=0.5)
    a = store.next_assignment("ann")
    store.submit(a.id, "ann", "left")
    b = store.next_assignment("ann")
    with pytest.raises(RateLimited):
        store.submit(b.id, "ann", "left")
    time.sleep(0.6)
    assert store.submit(b.id, "ann", "left").assignment_id == b.id


@pytest.mark.parametrize("raw, parsed", [
    (None, (30, 60.0)), ("", (30, 60.0)), ("30/60", (30, 60.0)), ("5", (5, 60.0)),
    ("10/2.5", (10, 2.5)), ("off", (0, 60.0)), ("0", (0, 60.0)), (" OFF ", (0, 60.0)),
])
def test_rate_limit_setting(raw, parsed):
    assert parse_rate(raw) == parsed


@pytest.mark.parametrize("raw", ["fast", "10/0", "-1/60", "10/inf", "1/2/3"])
def test_rate_limit_setting_refuses_nonsense(raw, monkeypatch):
    with pytest.raises(ValueError, match=f"RMLAB_RATE_LIMIT='{raw}': expected LABELS/SECONDS such as 30/60, or off"):
        parse_rate(raw)
    monkeypatch.setenv("RMLAB_RATE_LIMIT", raw)
    with pytest.raises(ValueError, match="RMLAB_RATE_LIMIT"):
        StoreConfig()


def test_quality_settings_come_from_env(monkeypatch):
    monkeypatch.setenv("RMLAB_MIN_SECONDS", "4.5")
    monkeypatch.setenv("RMLAB_RATE_LIMIT", "12/30")
    config = StoreConfig()
    assert (config.min_seconds, config.rate_limit, config.rate_window) == (4.5, 12, 30.0)
    monkeypatch.setenv("RMLAB_MIN_SECONDS", "soon")
    with pytest.raises(ValueError, match="RMLAB_MIN_SECONDS='soon' is not a number; set e.g. RMLAB_MIN_SECONDS=3"):
        StoreConfig()


# ---------------------------------------------------------------- invites

def test_invite_signs_in_until_revoked(make_store):
    store = make_store()
    token = store.create_invite("  ann ")
    assert len(token) == 43 and store.verify_invite(token) == "ann"
    assert store.verify_invite(token + "x") is None and store.verify_invite(token[:-1]) is None
    with store.engine.connect() as conn:  # only the hash is kept
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM invites"))]
    assert rows[0][:2] == ("ann", hashlib.sha256(token.encode()).hexdigest())
    assert not any(token in str(cell) for cell in rows[0])
    store.revoke_invite("ann")
    store.revoke_invite("ann")  # twice: no-op
    assert store.verify_invite(token) is None
    [invite] = store.list_invites()
    assert (invite.name, invite.active, invite.labels) == ("ann", False, 0)
    with pytest.raises(LookupError, match="no invite for 'bob'"):
        store.revoke_invite("bob")


def test_inviting_again_replaces_the_token(make_store):
    store = make_store(tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    old = store.create_invite("ann")
    store.revoke_invite("ann")
    new = store.create_invite("ann")
    assert new != old and store.verify_invite(old) is None and store.verify_invite(new) == "ann"
    store.create_invite("bob")
    a = store.next_assignment("ann")
    store.submit(a.id, "ann", "left")
    assert [(i.name, i.active, i.labels) for i in store.list_invites()] == [("ann", True, 1), ("bob", True, 0)]
    other = make_store()  # another process sees the same invites
    assert other.verify_invite(new) == "ann"


def test_invite_names_follow_the_name_rules(make_store):
    store = make_store()
    for bad, match in [("", "name must be a non-empty name"), ("a\u202eb", "U\\+202E"),
                       ("x" * 101, "name is 101 characters long; the limit is 100")]:
        with pytest.raises(ValueError, match=match):
            store.create_invite(bad)
    assert store.list_invites() == []


# ---------------------------------------------------------------- upgrading an older store

LEGACY_DROPS = {  # what a store made before invites and the pairings table lacks
    "sqlite": ["DROP TRIGGER rmlab_task_pairings", "DROP TRIGGER rmlab_hold_insert",
               "DROP TRIGGER rmlab_hold_update", "DROP TRIGGER rmlab_hold_delete"],
    "postgresql": ["DROP TRIGGER rmlab_task_pairings ON tasks", "DROP TRIGGER rmlab_hold ON assignments",
                   "DROP FUNCTION rmlab_task_pairings", "DROP FUNCTION rmlab_hold"],
}


def test_an_older_store_opens_and_gains_the_new_tables(make_store, backend):
    store = make_store(tiny_tasks(pairs=3, triads=1, agreement=0, gold=0), labels_per_task=2)
    for name in ("ann", "bob"):
        a = store.next_assignment(name)
        store.submit(a.id, name, "left")
    store.next_assignment("ann")  # outstanding: holds a slot
    before = held_by_recount(store)
    with store.engine.begin() as conn:
        for sql in LEGACY_DROPS[backend] + ["DROP TABLE pairings", "DROP TABLE invites",
                                            "DROP INDEX ix_assignment_finished", "DROP INDEX ix_task_order"]:
            conn.execute(sa.text(sql))
        # an old writer: a label stored with no trigger to count it
        conn.execute(sa.text("UPDATE assignments SET status = 'skipped' WHERE annotator = 'bob'"))
    store.close()
    reopened = make_store(labels_per_task=2)
    after = held_by_recount(reopened)
    assert set(after) == set(before)
    assert all(held == counted for held, counted in after.values())
    assert sum(held for held, _ in after.values()) == sum(held for held, _ in before.values()) - 1
    assert reopened.verify_invite(reopened.create_invite("cat")) == "cat"
    assert reopened.progress("bob")["skipped"] == 1
    while (a := reopened.next_assignment("cat")) is not None:
        reopened.submit(a.id, "cat", "tie")
    assert len(reopened.labels()) == 2 + 6 - 0  # ann's and bob's labels stay; cat labels all 6 pairings


def test_opening_repairs_counts_written_without_the_triggers(make_store):
    store = make_store(tiny_tasks(pairs=2, triads=0, agreement=0, gold=0), labels_per_task=1)
    a = store.next_assignment("ann")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE pairings SET held = 7"))  # drifted
    assert store.next_assignment("bob") is None  # every pairing looks full
    store.close()
    reopened = make_store(labels_per_task=1)
    assert all(held == counted for held, counted in held_by_recount(reopened).values())
    b = reopened.next_assignment("bob")
    assert b is not None and b.task_id != a.task_id


# ---------------------------------------------------------------- tasks

def test_import_is_idempotent_and_all_or_nothing(make_store):
    store = make_store()
    tasks = tiny_tasks()
    assert store.import_tasks(tasks) == len(tasks)
    assert store.import_tasks(tasks) == 0
    changed = Task(id="pair-0", kind="pair", prompt="edited", responses=("x", "y"))
    fresh = Task(id="new", kind="pair", prompt="p", responses=("x", "y"))
    with pytest.raises(ValueError, match="1 task id\\(s\\) already in the store with different content: pair-0"):
        store.import_tasks([fresh, changed])
    assert [t.id for t in store.tasks()] == [t.id for t in tasks]
    assert [t.id for t in store.tasks("gold")] == ["gold-0"]
    assert store.tasks() == tasks  # round trip keeps every field


def test_ensure_seeded_imports_seed_files_only_when_empty(make_store, tmp_path, monkeypatch):
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    (seed_dir / "pairs.jsonl").write_text(
        '{"id": "s1", "kind": "pair", "prompt": "p", "responses": ["a", "b"]}\n')
    monkeypatch.setattr(seed, "SEED_DIR", seed_dir)
    store = make_store()
    assert store.ensure_seeded() == 1
    assert store.ensure_seeded() == 0
    (seed_dir / "gold.jsonl").write_text(
        '{"id": "g1", "kind": "gold", "prompt": "p", "responses": ["a", "b"], "better": 1}\n')
    assert store.ensure_seeded() == 0  # not empty: nothing imported behind the user's back
    assert [t.id for t in store.tasks()] == ["s1"]


def test_load_seed_tasks_tolerates_missing_files(tmp_path):
    assert seed.load_seed_tasks(tmp_path) == []


# ---------------------------------------------------------------- configuration

def test_labels_per_task_comes_from_env(monkeypatch):
    monkeypatch.setenv("RMLAB_LABELS_PER_TASK", "5")
    assert StoreConfig().labels_per_task == 5
    monkeypatch.setenv("RMLAB_LABELS_PER_TASK", "three")
    with pytest.raises(ValueError, match="RMLAB_LABELS_PER_TASK='three' is not an integer"):
        StoreConfig()
    with pytest.raises(ValueError, match="labels_per_task must be >= 1"):
        StoreConfig(labels_per_task=0)


def test_db_location_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RMLAB_DB", raising=False)
    assert resolve_url() == f"sqlite:///{tmp_path / 'runs' / 'labels.db'}"
    monkeypatch.setenv("RMLAB_DB", str(tmp_path / "other.db"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'other.db'}"
    assert resolve_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"


def test_sqlite_folder_is_created(tmp_path):
    with Store(tmp_path / "runs" / "deep" / "labels.db") as store:
        assert store.tasks() == []
    assert (tmp_path / "runs" / "deep" / "labels.db").is_file()


def test_sqlite_is_durable_by_configuration(tmp_path):
    with open_store(tmp_path / "x.db") as store, store.engine.connect() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                   for p in ("journal_mode", "synchronous", "foreign_keys")}
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}


def test_temp_store_drops_nothing_outside_its_folder(tmp_path):
    with temp_store("sqlite", tmp_path) as store:
        assert store.url == f"sqlite:///{tmp_path / 'labels.db'}"
