"""Tasks made from generated text: policy samples become `pair` tasks for annotators, and
the arithmetic generator's false claims become `agreement` tasks (for audits)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from labeling.arithmetic import false_claims
from labeling.tasks import Task, content_id


def policy_pair_tasks(prompts: Sequence[str], samples: Iterable[Sequence[str]],
                      source: str = "analysis.policy") -> list[Task]:
    """One `pair` task per prompt from its first two sampled texts; a prompt whose two samples
    are empty or identical (after stripping) gives none."""
    tasks = []
    for prompt, texts in zip(prompts, samples):
        a, b = (t.strip() for t in texts[:2])
        if a and b and a != b:
            tasks.append(Task(id=content_id("pair", prompt, (a, b)), kind="pair", prompt=prompt,
                              responses=(a, b), category="policy", meta={"source": source}))
    return tasks


def false_claim_tasks(n: int, seed: int = 0) -> list[Task]:
    """`n` agreement tasks from `labeling.arithmetic.false_claims` (never the true value)."""
    return [Task(**{**t, "responses": tuple(t["responses"])}) for t in false_claims(int(n), seed)]
