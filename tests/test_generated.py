"""labeling.generated: policy samples and arithmetic claims as tasks."""
from __future__ import annotations

from labeling.generated import false_claim_tasks, policy_pair_tasks
from labeling.tasks import content_id


def test_policy_pair_tasks_keep_two_distinct_samples_per_prompt():
    tasks = policy_pair_tasks(["p1", "p2", "p3", "p4"],
                              [[" yes ", "no"], ["same", " same "], ["", "x"], ["a", "b", "c"]])
    assert [(t.prompt, t.responses) for t in tasks] == [("p1", ("yes", "no")), ("p4", ("a", "b"))]
    assert tasks[0].id == content_id("pair", "p1", ("yes", "no"))
    assert (tasks[0].kind, tasks[0].category, tasks[0].meta) == ("pair", "policy", {"source": "analysis.policy"})


def test_false_claim_tasks_are_agreement_tasks_that_never_state_the_truth():
    tasks = false_claim_tasks(12, seed=3)
    assert len(tasks) == 12 and {t.kind for t in tasks} == {"agreement"}
    assert all(isinstance(t.responses, tuple) and t.agreeing in (0, 1) for t in tasks)
    assert [t.id for t in tasks] == [t.id for t in false_claim_tasks(12, seed=3)]  # seeded
