import json

import numpy as np
import pytest

from rm.device import torch_threads
from rm.score import Scores, load_scorer, main
from rm.testing import tiny_backbone
from rm.train import TrainConfig, train
from test_rm_train import separable_pairs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    config = TrainConfig(data=str(separable_pairs(root / "p.jsonl", n=48)), out=str(root / "ens"),
                         backbone=tiny_backbone(root / "bb"), ensemble=2, epochs=1, batch_size=8, lr=3e-3,
                         max_length=40, eval_fraction=0.25, progress=False)
    return train(config)


def test_scores_dataclass():
    s = Scores.from_members(np.array([[1.0, 2.0], [3.0, 2.0]]))
    assert s.mean.tolist() == [2.0, 2.0] and s.std.tolist() == [1.0, 0.0]
    assert s.conservative(2.0).tolist() == [0.0, 2.0] and len(s) == 2
    single = Scores(mean=np.array([0.5]), std=None)
    assert single.std.tolist() == [0.0] and single.members.shape == (1, 1)


def test_ensemble_scorer_mean_and_std_over_members(ensemble):
    scorer = load_scorer(ensemble)
    assert len(scorer) == 2 and scorer.name == "ens"
    info = json.loads((ensemble / "rmlab_ensemble.json").read_text())
    assert scorer.temperature == pytest.approx(info["temperature"])
    responses = ["yes good correct answer", "no bad wrong answer", "sure thanks help"]
    scores = scorer.score("what is two plus one?", responses)
    assert scores.members.shape == (2, 3)
    np.testing.assert_allclose(scores.mean, scores.members.mean(0))
    np.testing.assert_allclose(scores.std, scores.members.std(0))
    assert (scores.std > 0).all()  # members differ (seeds, bootstrap)
    singles = [load_scorer(ensemble / f"member_{k}").score("what is two plus one?", responses).mean for k in range(2)]
    np.testing.assert_allclose(scores.members, np.stack(singles), rtol=1e-5, atol=1e-6)
    listed = load_scorer([ensemble / "member_0", ensemble / "member_1"]).score("what is two plus one?", responses)
    np.testing.assert_allclose(listed.mean, scores.mean, rtol=1e-5, atol=1e-6)


def test_score_batches_match_single_scoring(ensemble):
    scorer = load_scorer(ensemble / "member_0", precision="fp32")
    prompts = ["what is two plus one?", "hi", "what is four plus six? " * 3]
    responses = ["good right answer", "no", "correct polite help thanks"]
    batched = scorer.score(prompts, responses, batch_size=2).mean
    alone = [scorer.score([p], [r]).mean[0] for p, r in zip(prompts, responses)]
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-5)
    assert scorer.p_better(1.0, 1.0) == pytest.approx(0.5)


def test_score_validates_lengths(ensemble):
    with pytest.raises(ValueError, match="got 2 prompts for 1 responses"):
        load_scorer(ensemble / "member_0").score(["a", "b"], ["c"])


def test_cli_json(ensemble, capsys):
    main(["--rm", str(ensemble), "--prompt", "what is two plus one?", "--response", "good right answer",
          "--response", "bad worse answer", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert len(report["rewards"]) == 2 and len(report["std"]) == 2 and len(report["p_first_better"]) == 1


def test_cli_repeated_rm_is_an_ensemble(ensemble, capsys):
    main(["--rm", str(ensemble / "member_0"), "--rm", str(ensemble / "member_1"), "--prompt", "hi",
          "--response", "good", "--response", "bad", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["rm"] == "member_0+member_1" and all(s > 0 for s in report["std"])


def test_scorer_matches_the_trainers_autocast_numerics(ensemble):
    """Scorer stores Linear weights in the autocast dtype: same rewards as autocast over fp32 weights."""
    import torch

    from rm.checkpoint import load_rm
    from rm.device import autocast_dtype, use_attention
    from rm.formatting import Formatter

    prompts, responses = ["what is two plus one?", "hi"], ["good right answer", "no bad wrong answer"]
    scorer = load_scorer(ensemble / "member_0", precision="bf16")
    model = load_rm(ensemble / "member_0")
    use_attention(model.body, "cpu", dtype=torch.bfloat16)
    enc = Formatter(model.tokenizer, model.max_length).encode(prompts, responses)
    expected = []
    for ids, types in zip(enc.input_ids, enc.token_type_ids):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            expected.append(model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long),
                                  torch.tensor([types])).item())
    alone = [scorer.score([p], [r]).mean[0] for p, r in zip(prompts, responses)]
    np.testing.assert_allclose(alone, expected, rtol=1e-6, atol=1e-7)
    assert autocast_dtype("cpu", "bf16") == scorer.dtype
