import doctest

import torch

import rm.collate
from rm.collate import PackedPairCollator, PairCollator, SequenceCollator, length_grouped_batches, sorted_batches


def test_docstring_example_runs():
    assert doctest.testmod(rm.collate).failed == 0


def test_first_half_chosen_second_half_rejected_left_padding():
    feats = [{"chosen_ids": [1, 2], "rejected_ids": [3], "chosen_types": [0, 1], "rejected_types": [1], "margin": 1.0, "tie": False},
             {"chosen_ids": [4], "rejected_ids": [5, 6, 7], "chosen_types": [0], "rejected_types": [0, 1, 1], "margin": 0.0, "tie": True}]
    batch = PairCollator(pad_token_id=9, padding_side="left")(feats)
    torch.testing.assert_close(batch["input_ids"], torch.tensor([[9, 1, 2], [9, 9, 4], [9, 9, 3], [5, 6, 7]]))
    torch.testing.assert_close(batch["attention_mask"], torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 1], [1, 1, 1]]))
    torch.testing.assert_close(batch["token_type_ids"], torch.tensor([[0, 0, 1], [0, 0, 0], [0, 0, 1], [0, 1, 1]]))
    assert batch["margin"].tolist() == [1.0, 0.0] and batch["tie"].tolist() == [False, True]


def test_sequence_collator():
    batch = SequenceCollator(pad_token_id=0)([[5, 6], [7]])
    assert batch["input_ids"].tolist() == [[5, 6], [7, 0]] and "token_type_ids" not in batch


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    lengths = [int(x) for x in torch.randint(1, 500, (1000,), generator=torch.Generator().manual_seed(0))]
    batches = length_grouped_batches(lengths, 8, seed=1, group=20)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    random_padded = sum(8 * max(lengths[i] for i in range(s, min(s + 8, 1000))) for s in range(0, 1000, 8))
    assert padded < 0.8 * random_padded  # far less padding than arrival order
    assert batches != length_grouped_batches(lengths, 8, seed=2, group=20)


def test_sorted_batches():
    assert sorted_batches([1, 5, 3], 2) == [[1, 2], [0]]


def test_packed_collator_lays_sequences_end_to_end_chosen_first():
    feats = [{"chosen_ids": [1, 2], "rejected_ids": [3], "chosen_types": [0, 1], "rejected_types": [1], "margin": 1.0, "tie": False},
             {"chosen_ids": [4], "rejected_ids": [5, 6, 7], "chosen_types": [0], "rejected_types": [0, 1, 1], "margin": 0.0, "tie": True}]
    batch = PackedPairCollator()(feats)
    assert batch["input_ids"].tolist() == [[1, 2, 4, 3, 5, 6, 7]]
    assert batch["position_ids"].tolist() == [[0, 1, 0, 0, 0, 1, 2]]
    assert batch["token_type_ids"].tolist() == [[0, 1, 0, 1, 0, 1, 1]]
    assert batch["cu_seq_lens"].tolist() == [0, 2, 3, 4, 7] and batch["cu_seq_lens"].dtype == torch.int32
    assert batch["margin"].tolist() == [1.0, 0.0] and batch["tie"].tolist() == [False, True]
    assert "attention_mask" not in batch
