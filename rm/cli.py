"""Command-line options generated from a config dataclass, so each option's help is written once.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class C:
    ...     n: int = field(default=3, metadata={"help": "how many"})
    >>> parser = argparse.ArgumentParser()
    >>> add_dataclass_args(parser, C)
    >>> from_dict(C, vars(parser.parse_args(["--n", "5"])))
    C(n=5)
"""
import argparse
import dataclasses
import difflib
import json
import types
import typing

PARSERS = {dict: json.loads, int: int, float: float, str: str}  # anything else is read as str


def _field_type(tp) -> tuple[typing.Any, bool]:
    """(element type, list?): `int | None` -> (int, False); `list[str] | None` -> (str, True);
    `dict[str, int]` -> (dict, False); a `Literal[...]` is kept as it is (its values are the choices)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return _field_type(typing.get_args(tp)[0])[0], True
    return (tp if origin is typing.Literal else origin or tp), False


def add_dataclass_args(parser: argparse.ArgumentParser, cls, required: tuple[str, ...] = (),
                       positional: tuple[str, ...] = ()) -> None:
    """One `--kebab-name` option per field (fields named in `positional` are positional arguments),
    with the help from `field(metadata={"help": ...})`; `metadata={"cli": False}` leaves a field out.

    A field is required when it has no default or is named in `required`. bool -> `--x/--no-x`;
    list[T] -> one or more values; Literal[...] or metadata["choices"] -> choices; dict -> JSON.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        tp, many = _field_type(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = (f.default if f.default is not dataclasses.MISSING else f.default_factory()) if has_default else None
        needed = f.name in required or not has_default
        help_text = f.metadata.get("help", "")
        choices = typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else f.metadata.get("choices")
        convert = type(choices[0]) if typing.get_origin(tp) is typing.Literal else PARSERS.get(tp, str)
        if f.name in positional:  # optional when the field has a default
            nargs = ("+" if needed else "*") if many else (None if needed else "?")
            parser.add_argument(f.name, type=convert, nargs=nargs, default=default, choices=choices, help=help_text)
            continue
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{help_text} (default: {default})")
            continue
        parser.add_argument(flag, dest=f.name, type=convert, nargs="+" if many else None, default=default,
                            choices=choices, required=needed,
                            help=help_text if needed else f"{help_text} (default: {default})")


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
