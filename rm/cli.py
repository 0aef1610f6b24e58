"""Command-line options generated from a config dataclass, so each option's help is written once."""
import argparse
import dataclasses
import difflib
import json
import types
import typing


def _base_type(tp):
    """`int | None` -> int; `dict` stays dict."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    return typing.get_origin(tp) or tp


PARSERS = {bool: None, dict: json.loads, int: int, float: float, str: str}


def add_dataclass_args(parser: argparse.ArgumentParser, cls, required: tuple[str, ...] = ()) -> None:
    """One `--kebab-name` option per field; help from `field(metadata={"help": ...})`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        tp = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = f.metadata.get("help", "")
        flag = "--" + f.name.replace("_", "-")
        kwargs = {"dest": f.name, "help": f"{help_text} (default: {default})"}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, **kwargs)
            continue
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, type=PARSERS.get(tp, str), default=default,
                            required=f.name in required, **kwargs)


def from_dict(cls, values: dict, aliases: dict[str, str] | None = None):
    """Build `cls` from a dict, rejecting unknown keys with a did-you-mean message.

    `aliases` maps other tools' names for a setting to ours (e.g. learning_rate -> lr).
    """
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = [aliases[key]] if aliases and key in aliases else difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise TypeError(f"Unknown {cls.__name__} key '{key}': {hint}valid keys are {', '.join(names)}")
    return cls(**values)
