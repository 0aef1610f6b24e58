"""The annotator's two operations, as JSON-able dicts: serve the next task, record a label.

The UI's buttons and the named API endpoints (`next_task`, `submit_label`) both call these,
so a script labels exactly as a person does. Choices and strengths are in the annotator's
terms (`labeling.vocab`: "A" is the response shown on the left); time on task is the store's,
from serve (or re-serve) to submit.
"""
from __future__ import annotations

from labeling.store import Store
from labeling.vocab import DEFAULT_STRENGTH, from_api


def progress(store: Store, annotator: str) -> dict:
    """{"done", "skipped", "remaining"} for the annotator."""
    counts = store.progress(annotator)
    return {k: counts[k] for k in ("done", "skipped", "remaining")}


def task_view(store: Store, annotator: str, assignment) -> dict:
    """An assignment (or None: nothing left) as the annotator sees it.

    {"assignment_id": int or None when nothing is left, "prompt", "response_a",
     "response_b" (as shown: A left, B right), "progress": {...}}
    """
    view = {"assignment_id": None, "prompt": "", "response_a": "", "response_b": "",
            "progress": progress(store, annotator)}
    if assignment is not None:
        view.update(assignment_id=assignment.id, prompt=assignment.prompt,
                    response_a=assignment.left, response_b=assignment.right)
    return view


def serve_task(store: Store, annotator: str) -> dict:
    """The annotator's next assignment (see `task_view`); an open (served, unlabelled) one is
    served again."""
    return task_view(store, annotator, store.next_assignment(annotator))


def record_label(store: Store, annotator: str, assignment_id: int, choice: str,
                 strength: str = DEFAULT_STRENGTH, rationale: str | None = "",
                 tags: list[str] | None = None) -> dict:
    """Store one label durably and serve the next task, in one transaction; idempotent per
    assignment (a repeat stores nothing and serves the open task again). Raises ValueError (bad
    value; the store's RateLimited is one), PermissionError (someone else's assignment) or
    LookupError (unknown id).

    {"assignment_id": int, "label_id": int (the same for a repeated submit),
     "progress": {...}, "next": the next task as `task_view` gives it}
    """
    choice, strength = from_api(choice, strength)
    # the store checks every value as sent (int() would turn an id of 1.5 or True into 1, list()
    # a tag string into letters and a dict into its keys)
    rationale = rationale.strip() if isinstance(rationale, str) else rationale or ""
    label, assignment = store.submit_and_next(assignment_id, annotator, choice, strength,
                                              rationale=rationale, tags=tags)
    nxt = task_view(store, annotator, assignment)
    return {"assignment_id": label.assignment_id, "label_id": label.id, "progress": nxt["progress"], "next": nxt}
