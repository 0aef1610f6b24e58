"""Batching for pairs: length-grouped batches, dynamic padding to the longest in the batch, or
packing without padding (PackedPairCollator)."""
import random
from dataclasses import dataclass

import torch


@dataclass
class PairCollator:
    """Pads a list of tokenized pairs into one batch of 2B sequences.

    Batch contract: the first half of `input_ids` (rows 0..B-1) holds the chosen sequences,
    the second half (rows B..2B-1) the rejected ones, in the same pair order; `margin` and
    `tie` have B entries. Padding goes on `padding_side` with `pad_token_id`, to the longest
    sequence in the batch (no fixed max length).

    >>> c = PairCollator(pad_token_id=0)
    >>> b = c([{"chosen_ids": [5, 6, 7], "rejected_ids": [5, 8], "margin": 0.0, "tie": False}])
    >>> b["input_ids"].tolist(), b["attention_mask"].tolist()
    ([[5, 6, 7], [5, 8, 0]], [[1, 1, 1], [1, 1, 0]])
    >>> b["margin"].tolist(), b["tie"].tolist()
    ([0.0], [False])
    """

    pad_token_id: int
    padding_side: str = "right"
    pad_to_multiple_of: int = 1

    def pad(self, seqs: list[list[int]], value: int) -> torch.Tensor:
        width = max(map(len, seqs))
        width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = torch.full((len(seqs), width), value, dtype=torch.long)
        for row, seq in enumerate(seqs):
            if self.padding_side == "right":
                out[row, :len(seq)] = torch.tensor(seq)
            else:
                out[row, width - len(seq):] = torch.tensor(seq)
        return out

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [f["chosen_ids"] for f in features] + [f["rejected_ids"] for f in features]
        batch = {
            "input_ids": self.pad(seqs, self.pad_token_id),
            "attention_mask": self.pad([[1] * len(s) for s in seqs], 0),
            "margin": torch.tensor([float(f.get("margin", 0.0)) for f in features]),
            "tie": torch.tensor([bool(f.get("tie", False)) for f in features]),
        }
        if "chosen_types" in features[0]:
            types = [f["chosen_types"] for f in features] + [f["rejected_types"] for f in features]
            batch["token_type_ids"] = self.pad(types, 0)
        return batch


@dataclass
class PackedPairCollator:
    """Padding-free batches: the 2B sequences of B pairs laid end to end in one row.

    Batch contract: `input_ids` (1, L) holds the chosen sequences of pairs 0..B-1, then the
    rejected ones in the same order (PairCollator's order, so rewards chunk into chosen and
    rejected halves), L = the real tokens, no padding. `cu_seq_lens` (2B+1,) int32 holds the
    offsets (sequence i is tokens cu[i]:cu[i+1]); `position_ids` (1, L) restart at 0 in every
    sequence; `token_type_ids` (1, L) when the features have types; `margin` and `tie` have B
    entries. There is no attention mask: the model must keep each sequence to itself
    (rm.model.use_packing).

    >>> b = PackedPairCollator()([{"chosen_ids": [5, 6, 7], "rejected_ids": [5, 8], "margin": 0.0, "tie": False}])
    >>> b["input_ids"].tolist(), b["position_ids"].tolist(), b["cu_seq_lens"].tolist()
    ([[5, 6, 7, 5, 8]], [[0, 1, 2, 0, 1]], [0, 3, 5])
    """

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [f["chosen_ids"] for f in features] + [f["rejected_ids"] for f in features]
        lengths = torch.tensor([len(s) for s in seqs])
        batch = {
            "input_ids": torch.tensor([t for s in seqs for t in s]).unsqueeze(0),
            "position_ids": torch.cat([torch.arange(n) for n in lengths.tolist()]).unsqueeze(0),
            "cu_seq_lens": torch.cat([torch.zeros(1, dtype=torch.int32), lengths.cumsum(0).to(torch.int32)]),
            "margin": torch.tensor([float(f.get("margin", 0.0)) for f in features]),
            "tie": torch.tensor([bool(f.get("tie", False)) for f in features]),
        }
        if "chosen_types" in features[0]:
            types = [f["chosen_types"] for f in features] + [f["rejected_types"] for f in features]
            batch["token_type_ids"] = torch.tensor([t for s in types for t in s]).unsqueeze(0)
        return batch


@dataclass
class SequenceCollator:
    """Pads single sequences (for scoring): input_ids/attention_mask(/token_type_ids), (N, T)."""

    pad_token_id: int
    padding_side: str = "right"

    def __call__(self, ids: list[list[int]], types: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
        pad = PairCollator(self.pad_token_id, self.padding_side).pad
        batch = {"input_ids": pad(ids, self.pad_token_id), "attention_mask": pad([[1] * len(s) for s in ids], 0)}
        if types is not None:
            batch["token_type_ids"] = pad(types, 0)
        return batch


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int = 0,
                           group: int = 50) -> list[list[int]]:
    """Shuffled batches of indices whose lengths are alike (less padding), still random order.

    Shuffle all indices, cut them into mega-batches of `group` batches, sort each mega-batch
    by length (longest first), cut into batches, and shuffle the batch order; the longest
    batch goes first so that out-of-memory shows on step one.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size * group):
        mega = sorted(order[start:start + batch_size * group], key=lambda i: -lengths[i])
        batches += [mega[i:i + batch_size] for i in range(0, len(mega), batch_size)]
    rng.shuffle(batches)
    if batches:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Batches in length order (for inference: least padding, order does not matter)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
