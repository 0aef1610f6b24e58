"""Labeling: tasks, the label store, assignment of work to annotators, agreement, export.

- `labeling.tasks`: the `Task` record and validated loading (`load_tasks`).
- `labeling.store`: `open_store(db)` -> `Store` (SQLite or PostgreSQL), assignment rules,
  invites, the rate limit and the `fast` flag.
- `labeling.limits`: the limits on every text (prompt, response, rationale, name, ...).
- `labeling.seed`: the seed task set in data/tasks/ (`load_seed_tasks`).
- `labeling.export`: labels -> `datasets.Dataset` (`to_dataset`, `export`, `load_export`).
- `labeling.stats`: agreement, gold accuracy, position/agreement bias, triad cycles.
- `labeling.peers`: Chatbot Arena, Argilla and Label Studio exports (`read_peer`, `import_peer`).
- `labeling.hub`: push a folder to the Hugging Face Hub; `labeling.cli`: how every CLI reports bad input.
- `python -m labeling import|export|stats|seed|invite|invites|revoke`: the command line.

Nothing is imported here, so `import labeling` stays cheap.
"""
