"""The label vocabulary, defined once: what an annotator can say about a pairing.

The UI and the API speak in the annotator's terms (A is the response shown on the left,
strength words); the store keeps the shown side ("left"/"right") and the strength as 1..3,
exported as a margin. Everything that validates or displays a label reads these tables.
"""
from __future__ import annotations

from labeling.limits import clip

# API/UI choice -> the store's choice (A is the response shown on the left).
CHOICES: dict[str, str] = {"A": "left", "B": "right", "tie": "tie", "both_bad": "both_bad"}
CHOICE_LABELS: dict[str, str] = {"A": "A is better", "B": "B is better", "tie": "Tie",
                                 "both_bad": "Both bad"}
STORE_CHOICES: tuple[str, ...] = tuple(CHOICES.values())

# Strength word <-> the store's 1..3.
STRENGTHS: dict[str, int] = {"slightly": 1, "clearly": 2, "much": 3}
STRENGTH_WORDS: dict[int, str] = {n: word for word, n in STRENGTHS.items()}
DEFAULT_STRENGTH = "clearly"

# strength -> margin, the Llama 2 "small margin" scale (Touvron et al. 2023, Table 28,
# https://arxiv.org/abs/2307.09288): the reward gap the RM is asked to exceed.
MARGINS: dict[int, float] = {1: 1 / 3, 2: 2 / 3, 3: 1.0}

TAGS: tuple[str, ...] = ("agrees with a false claim", "too long", "hedges", "factually wrong",
                         "unsafe", "off-topic")
MAX_TAGS = len(TAGS)  # a label carries each tag at most once


def check_label(choice: str, strength: int, tags) -> tuple[str, ...]:
    """Validate a label in the store's terms; returns the tags as a tuple (None: no tags).

    Raises ValueError naming the field: an unknown choice, a strength other than the int
    1, 2 or 3, tags that are not a list of known tags each given once (at most MAX_TAGS).
    """
    if not isinstance(choice, str) or choice not in STORE_CHOICES:
        raise ValueError(f"choice must be one of {', '.join(STORE_CHOICES)}, got {clip(choice)}")
    if type(strength) is not int or strength not in MARGINS:
        raise ValueError(f"strength must be 1, 2 or 3 ({'/'.join(STRENGTHS)}), got {clip(strength)}")
    if tags is None:
        return ()
    if isinstance(tags, (str, bytes, dict)) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise ValueError(f"tags must be a list of strings, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"tags: {len(tags)} given, at most {MAX_TAGS} (each tag once)")
    tags = tuple(tags)
    if not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of strings")
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise ValueError(f"unknown tag {clip(unknown[0])}; tags are: {', '.join(TAGS)}")
    twice = next((t for i, t in enumerate(tags) if t in tags[:i]), None)
    if twice is not None:
        raise ValueError(f"tag {twice!r} is given twice")
    return tags


def from_api(choice: str, strength: str) -> tuple[str, int]:
    """An API/UI choice and strength word -> the store's (choice, strength). Raises ValueError."""
    if not isinstance(choice, str) or choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {clip(choice)}")
    if not isinstance(strength, str) or strength not in STRENGTHS:
        raise ValueError(f"strength must be one of {', '.join(STRENGTHS)}, got {clip(strength)}")
    return CHOICES[choice], STRENGTHS[strength]
