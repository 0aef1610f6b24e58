"""The spine end to end: labels in the store -> exported dataset -> trained RM -> scores.

Each stage is tested on its own elsewhere; this checks that their contracts meet: every export
format the labeling CLI writes is a training source for rm.train, and the checkpoint it writes
is what rm.score loads.
"""
import numpy as np
import pytest

from labeling.export import ExportConfig, export
from labeling.testing import temp_store, tiny_tasks
from rm.data import load_preferences
from rm.score import load_scorer
from rm.testing import tiny_backbone
from rm.train import TrainConfig, train


@pytest.fixture
def labelled_store(tmp_path):
    """Two annotators label every pairing; the response whose text ends in 'a' always wins."""
    with temp_store("sqlite", tmp_path) as store:
        store.import_tasks(tiny_tasks(pairs=6, triads=1, agreement=1, gold=1))
        for annotator in ("ann", "bob"):
            while (a := store.next_assignment(annotator)) is not None:
                if a.left.endswith("a") == a.right.endswith("a"):
                    choice = "tie"
                else:
                    choice = "left" if a.left.endswith("a") else "right"
                store.submit(a.id, annotator, choice, strength=3)
        yield store


@pytest.mark.parametrize("fmt", ["hf", "jsonl", "parquet"])
def test_every_export_format_is_a_training_source(labelled_store, tmp_path, fmt):
    out = tmp_path / f"export-{fmt}"
    export(labelled_store, ExportConfig(out=str(out), format=fmt, aggregate="none"))
    ds = load_preferences(str(out))
    labels = labelled_store.labels()
    assert len(ds) == len(labels)
    decided = [row for row in ds if not row["tie"]]
    assert decided and all(row["chosen"].endswith("a") for row in decided)
    assert all(row["margin"] == pytest.approx(1.0) for row in decided)  # strength 3 = much better


def test_labels_train_a_model_that_scores_them(labelled_store, tmp_path):
    out = tmp_path / "export"
    export(labelled_store, ExportConfig(out=str(out), format="hf", aggregate="majority"))
    ckpt = train(TrainConfig(data=str(out), out=str(tmp_path / "rm"), backbone=tiny_backbone(tmp_path / "bb"),
                             eval_fraction=0.0, epochs=3, batch_size=4, lr=1e-3, max_length=32,
                             progress=False, precision="fp32"))
    scorer = load_scorer(str(ckpt))
    ds = load_preferences(str(out))
    decided = ds.filter(lambda row: not row["tie"])
    chosen = scorer.score(decided["prompt"], decided["chosen"]).mean
    rejected = scorer.score(decided["prompt"], decided["rejected"]).mean
    assert chosen.shape == (len(decided),)
    assert np.mean(chosen > rejected) > 0.9
