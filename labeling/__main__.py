"""Command line for the label store: parses arguments and calls library functions.

    python -m labeling import SRC [--split train] [--db DB]
    python -m labeling export --out DIR [--format hf|jsonl|parquet] [--aggregate none|majority]
                              [--for full|trl] [--push-to-hub OWNER/NAME [--private]] [--db DB]
    python -m labeling stats [--json] [--db DB]
    python -m labeling seed [--db DB]
    python -m labeling invite NAME [--db DB]      # prints a new sign-in token, once
    python -m labeling invites [--json] [--db DB]
    python -m labeling revoke NAME [--db DB]

DB is a SQLite path or a SQLAlchemy URL; default env RMLAB_DB, else runs/labels.db.
`import` also takes peers' exports (Chatbot Arena battles, Argilla, Label Studio): their
verdicts become tasks and labels (labeling.peers). Bad input ends with one `error:` line and
exit status 2 (labeling.cli).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from labeling import seed, stats
from labeling.cli import run_cli
from labeling.export import AGGREGATORS, CONFIG_FILE, PROFILES, WRITERS, ExportConfig, export
from labeling.peers import import_peer, read_peer
from labeling.store import open_store
from labeling.tasks import load_tasks


def cmd_import(args: argparse.Namespace) -> int:
    peer = read_peer(args.src, split=args.split)
    if peer is not None:
        with open_store(args.db) as store:
            n = import_peer(store, peer)
            print(f"imported {n['tasks']} new task(s) and {n['labels']} new label(s) ({n['present']} already "
                  f"present) from {args.src} ({peer.format}) into {store.safe_url}")
        return 0
    tasks = load_tasks(args.src, split=args.split)
    with open_store(args.db) as store:
        new = store.import_tasks(tasks)
        print(f"imported {new} new task(s) ({len(tasks) - new} already present) "
              f"from {args.src} into {store.safe_url}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    config = ExportConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ExportConfig)})
    with open_store(args.db) as store:
        path = export(store, config)
    resolved = json.loads((Path(config.out) / CONFIG_FILE).read_text(encoding="utf-8"))
    left_out = ", ".join(f"{n} {flag}" for flag, n in resolved["left_out"].items())
    print(f"wrote {path} ({config.format}, aggregate={config.aggregate}, {resolved['rows']} rows"
          f"{f'; left out for {config.profile}: {left_out}' if left_out else ''}), "
          f"{config.out}/README.md and {config.out}/{CONFIG_FILE}"
          + (f"; pushed to https://huggingface.co/datasets/{config.push_to_hub}" if config.push_to_hub else ""))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        labels = store.labels()
    if args.json:
        print(json.dumps(stats.summary(labels), indent=2))
        return 0
    print(f"{len(labels)} label(s) from {labels.annotator.nunique()} annotator(s)")
    print("Krippendorff's alpha:", ", ".join(f"{k} {v:.3f}" for k, v in
                                             stats.alpha_by_kind(labels).items()))
    for name, table in stats.TABLES.items():
        print(f"\n{name}\n{table(labels).to_string(index=False)}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        new = store.ensure_seeded()
        print(f"imported {new} seed task(s) from {seed.SEED_DIR}" if new
              else f"{store.safe_url} already has tasks; nothing imported")
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        replaced = any(i.name == args.name.strip() for i in store.list_invites())
        token = store.create_invite(args.name)
    print(f"{'replaced the earlier invite; ' if replaced else ''}invite for {args.name.strip()!r}: "
          "the token below is shown once (the store keeps only its SHA-256); "
          f"`python -m labeling revoke {args.name.strip()}` stops it", file=sys.stderr)
    print(token)
    return 0


def cmd_invites(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        invites = store.list_invites()
    if args.json:
        print(json.dumps([{**dataclasses.asdict(i), "active": i.active} for i in invites], indent=2))
        return 0
    for i in invites:
        status = "active" if i.active else f"revoked {i.revoked_at}"
        print(f"{i.name}\t{status}\tinvited {i.created_at}\t{i.labels} label(s)")
    if not invites:
        print("no invites; `python -m labeling invite NAME` makes one", file=sys.stderr)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        try:
            store.revoke_invite(args.name)
        except LookupError as e:
            raise ValueError(str(e)) from None
    print(f"revoked the invite for {args.name.strip()!r}; their labels stay")
    return 0


def _add_dataclass_args(parser: argparse.ArgumentParser, cls, choices: dict) -> None:
    """One --option per dataclass field (`metadata["flag"]`, else --kebab-name), with the
    field's help (written once, in the class); a bool field is a switch."""
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=f.name, action="store_true", help=f.metadata.get("help"))
            continue
        parser.add_argument(flag, dest=f.name, required=required, choices=choices.get(f.name),
                            default=None if required else f.default, help=f.metadata.get("help"))


def build_parser() -> argparse.ArgumentParser:
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=None,
                    help="SQLite path or SQLAlchemy URL (default: env RMLAB_DB, else runs/labels.db)")
    parser = argparse.ArgumentParser(prog="python -m labeling", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", parents=[db], help="validate a task file and import it (all or nothing)")
    p.add_argument("src", help="JSONL/CSV/Parquet file, dataset folder, or Hugging Face dataset id")
    p.add_argument("--split", default="train", help="split to read from a dataset (default: train)")
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("export", parents=[db], help="write the labels as a preference dataset")
    _add_dataclass_args(p, ExportConfig, {"format": list(WRITERS), "aggregate": list(AGGREGATORS),
                                          "profile": list(PROFILES)})
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("stats", parents=[db], help="annotation statistics")
    p.add_argument("--json", action="store_true", help="print every statistic as JSON")
    p.set_defaults(run=cmd_stats)

    p = sub.add_parser("seed", parents=[db], help="import the seed tasks if the store has none")
    p.set_defaults(run=cmd_seed)

    p = sub.add_parser("invite", parents=[db], help="make (or remake) an annotator's sign-in token "
                                                     "for RMLAB_SIGNIN=invite; prints it once")
    p.add_argument("name", help="the annotator's name, as their labels will carry it")
    p.set_defaults(run=cmd_invite)

    p = sub.add_parser("invites", parents=[db], help="list invites: name, active or revoked, labels")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=cmd_invites)

    p = sub.add_parser("revoke", parents=[db], help="stop an invite's token from signing in")
    p.add_argument("name", help="the invited annotator's name")
    p.set_defaults(run=cmd_revoke)
    return parser


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; bad input is one `error:` line and exit status 2 (labeling.cli)."""
    return run_cli(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
