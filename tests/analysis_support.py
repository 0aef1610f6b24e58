"""Helpers shared by the analysis tests: a fake scorer and one tiny trained reward model."""
import json
from pathlib import Path

import numpy as np

from rm.score import Scores


class WordCountScorer:
    """Reward = number of whitespace-separated words: a perfectly length-hacked reward model."""

    temperature = 1.0

    def score(self, prompts, responses, batch_size: int = 32):  # rm.score.Scorer's signature
        return Scores(mean=np.array([len(r.split()) for r in responses], dtype=float), std=None)


def tiny_rm(tmp_path_factory) -> Path:
    """A tiny BERT reward model trained for one epoch, built once per test session (seconds)."""
    from rm.testing import tiny_backbone
    from rm.train import TrainConfig, train

    root = tmp_path_factory.getbasetemp() / "analysis_tiny_rm"
    if (root / "rm" / "metrics.json").is_file():
        return root / "rm"
    root.mkdir(exist_ok=True)
    pairs = root / "pairs.jsonl"
    rows = [{"prompt": f"question {i}", "chosen": "a careful correct answer", "rejected": "wrong"} for i in range(16)]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return train(TrainConfig(data=str(pairs), out=str(root / "rm"), backbone=tiny_backbone(root / "bb"), epochs=1,
                             batch_size=8, max_length=32, eval_fraction=0, progress=False))
