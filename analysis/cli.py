"""Shared plumbing for the analysis CLIs: dataclass config <-> argparse, and JSON reports.

Each analysis config is a dataclass whose fields carry their help once, in
`field(metadata={"help": ...})`; `parser_for` turns it into flags (`max_rows` -> `--max-rows`)
with rm.cli's `add_dataclass_args`, and `config_from_args` turns the parsed flags back into the
dataclass, so the report can save the resolved config.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class C:
    ...     n: int = field(default=3, metadata={"help": "how many"})
    >>> config_from_args(C, parser_for(C).parse_args(["--n", "5"]))
    C(n=5)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rm.cli import add_dataclass_args


def parser_for(cls: type, description: str = "", positional: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """An ArgumentParser with one flag per dataclass field (names in `positional` are positional)
    and `--json` (print the report)."""
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip().splitlines()[0])
    add_dataclass_args(parser, cls, positional=positional)
    parser.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    return parser


def config_from_args(cls: type, args: argparse.Namespace):
    """The dataclass instance from parsed args (extra args such as --json are ignored)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if isinstance(values[f.name], list) and isinstance(f.default, tuple):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def jsonable(obj: Any) -> Any:
    """Plain JSON types: dataclasses and DataFrames become dicts/records, NaN/inf becomes None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def emit(report: dict, out: str | Path | None, print_json: bool, summary: str) -> None:
    """Write the report to `out` (JSON) and print either the JSON or a one-line summary."""
    text = json.dumps(jsonable(report), indent=2, ensure_ascii=False)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n" if print_json else summary + (f"\nreport: {out}" if out else "") + "\n")


def write_plot(fig, report: str | Path | None, png: str | Path | None = None) -> str:
    """Save `fig` as `png`, by default beside the JSON report (its name with .png); return the path."""
    png = Path(png) if png else Path(report).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    return str(png)


def load_scorer_from(rm: str | list[str] | tuple[str, ...]):
    """rm.score.load_scorer for one path/id, or an ensemble for several."""
    from rm.score import load_scorer  # lazy: loads torch and the model only when a CLI runs

    rms = [rm] if isinstance(rm, str) else list(rm)
    return load_scorer(rms[0] if len(rms) == 1 else rms)
