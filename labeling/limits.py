"""Limits on every text the labeling store accepts, written once.

Enforced where text comes in: `labeling.tasks.load_tasks` (the error names file, line and
field, and nothing is imported), `Store.import_tasks` (tasks built in Python), `Store.submit`
(rationale; tags are held to `labeling.vocab.check_label`: known tags, each at most once, so
at most `vocab.MAX_TAGS`) and every store call that takes a name (annotators, invites). Lengths count
characters (Unicode code points), not bytes. Besides its length, a text may not contain NUL
(PostgreSQL cannot store it) or an unpaired surrogate (it has no UTF-8 form); a name may not
contain control or invisible formatting characters (newlines, zero-width spaces,
right-to-left overrides), so two names that look alike are alike.

The seed tasks and the shared real data sit far below these: the longest hh-rlhf transcript
is 3,962 characters, the longest UKPConvArg1 argument 740 and its longest reason 150.
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping


# field -> most characters. "response" is each response; "meta" is the task's meta as JSON.
MAX_CHARS: dict[str, int] = {
    "prompt": 20_000,
    "response": 20_000,
    "rationale": 2_000,
    "name": 100,  # annotator and invite names
    "id": 200,  # task ids (the database column's width)
    "category": 200,
    "meta": 10_000,
}
MAX_TOKEN_CHARS = 200  # longest invite token worth hashing; real ones are 43
# Unicode categories a name may not contain: control (Cc), format (Cf: zero-width, bidi
# overrides), line and paragraph separators (Zl, Zp).
NAME_FORBIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})


def text_problem(value: str, field: str) -> str | None:
    """What is wrong with a text for `field` (a MAX_CHARS key), or None when it is fine."""
    limit = MAX_CHARS[field]
    if len(value) > limit:
        return f"is {len(value):,} characters long; the limit is {limit:,}"
    if "\x00" in value:
        return f"contains a NUL character at position {value.index(chr(0))}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"is not valid Unicode (an unpaired surrogate at position {e.start})"
    return None


def check_text(value, field: str, label: str | None = None) -> str:
    """`value` when it is a string within the limits of `field`; else ValueError naming it."""
    label = label or field
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string, got {type(value).__name__}")
    problem = text_problem(value, field)
    if problem:
        raise ValueError(f"{label} {problem}")
    return value


def check_name(value, label: str = "name") -> str:
    """A name (annotator, invite) stripped of surrounding spaces; ValueError when it is empty,
    too long, or has control or invisible formatting characters."""
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string, got {type(value).__name__}")
    name = value.strip()
    if not name:
        raise ValueError(f"{label} must be a non-empty name")
    if len(name) > MAX_CHARS["name"]:
        raise ValueError(f"{label} is {len(name):,} characters long; the limit is {MAX_CHARS['name']}")
    bad = next((c for c in name if unicodedata.category(c) in NAME_FORBIDDEN), None)
    if bad is not None:
        raise ValueError(f"{label} contains the invisible or control character "
                         f"U+{ord(bad):04X}; use letters, digits, spaces and punctuation")
    check_text(name, "name", label)
    return name


def meta_problem(meta: Mapping) -> str | None:
    """What is wrong with a task's `meta` object (not JSON, too big), or None."""
    try:
        text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        return f"must be plain JSON (strings, numbers, lists, objects): {e}"
    return text_problem(text, "meta")


def clip(value, width: int = 40) -> str:
    """repr(value), cut to about `width` characters, for error messages about hostile input."""
    shown = repr(value)
    return shown if len(shown) <= width else f"{shown[:width]}... ({len(shown):,} characters)"
