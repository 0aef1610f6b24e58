"""Score responses with one reward model or an ensemble: `load_scorer(...).score(prompts, responses)`.

Inference runs under `torch.inference_mode` and bf16 autocast where the hardware has it.
Texts are tokenized once (prompts shared by several responses are cached), sequences are
batched by length, and a single model answers in one forward pass per batch.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rm.checkpoint import ENSEMBLE_FILE, load_rm, locate
from rm.collate import SequenceCollator, sorted_batches
from rm.device import autocast_dtype, default_device, torch_threads, use_attention
from rm.formatting import Formatter
from rm.metrics import p_better as _p_better
from rm.model import RewardModel



@dataclass
class Scores:
    """Rewards of N responses: `members` (K, N), their `mean` (N,) and `std` (N,) (0 for K=1)."""

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray = field(default=None)

    def __post_init__(self):
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.zeros_like(self.mean) if self.std is None else np.asarray(self.std, dtype=np.float64)
        self.members = self.mean[None] if self.members is None else np.asarray(self.members, dtype=np.float64)

    @classmethod
    def from_members(cls, members: np.ndarray) -> "Scores":
        members = np.atleast_2d(np.asarray(members, dtype=np.float64))  # (K, N)
        return cls(members.mean(0), members.std(0), members)

    def conservative(self, lam: float = 1.0) -> np.ndarray:
        """mean - lam·std: a pessimistic reward that penalises member disagreement."""
        return self.mean - lam * self.std

    def __len__(self) -> int:
        return len(self.mean)


def _tokenizer_key(model: RewardModel) -> tuple:
    """Members with equal tokenizers and max length share one Formatter (texts tokenized once)."""
    tok = model.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    return (backend.to_str() if backend is not None else tok.name_or_path,
            getattr(tok, "chat_template", None), model.max_length)


def cast_matmul_weights(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Store Linear weights in the autocast dtype once, so autocast stops re-casting them per call.

    Numerics are unchanged: autocast would cast these weights to `dtype` for every matmul anyway.
    One-output layers (reward heads) stay fp32; norms and embeddings stay fp32 as under autocast.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.out_features > 1:
            module.to(dtype)
    return model


class Scorer:
    """Scores (prompt, response) pairs with K ≥ 1 reward models; see `Scores`.

    The scorer owns its models: with bf16 autocast their Linear weights are stored in bf16.
    """

    def __init__(self, models: list[RewardModel], name: str = "rm", temperature: float | None = None,
                 precision: str = "auto", device: torch.device | str | None = None, num_threads: int | None = None):
        self.num_threads = num_threads  # CPU threads while scoring (None: torch's default)
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = autocast_dtype(self.device, precision)
        self.models = [m.eval().to(self.device) for m in models]
        for m in self.models:
            use_attention(m.body, self.device, dtype=self.dtype)
        if self.dtype is not None:
            self.models = [cast_matmul_weights(m, self.dtype) for m in self.models]
        self.name = name
        self.temperature = float(temperature if temperature is not None else
                                 (models[0].temperature if len(models) == 1 else 1.0))
        formatters: dict[tuple, Formatter] = {}
        self.formatters = [formatters.setdefault(_tokenizer_key(m), Formatter(m.tokenizer, m.max_length))
                           for m in self.models]

    def __len__(self) -> int:
        return len(self.models)

    @torch.inference_mode()
    def _score_model(self, model: RewardModel, encoded, batch_size: int) -> np.ndarray:
        tok = model.tokenizer
        collate = SequenceCollator(tok.pad_token_id, tok.padding_side)
        out = np.empty(len(encoded.input_ids))
        for idx in sorted_batches([len(s) for s in encoded.input_ids], batch_size):
            types = [encoded.token_type_ids[i] for i in idx] if encoded.token_type_ids is not None else None
            batch = collate([encoded.input_ids[i] for i in idx], types)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
                out[idx] = model(**batch).float().cpu().numpy()
        return out

    def score(self, prompts: list[str] | str, responses: list[str], batch_size: int = 32) -> Scores:
        """Rewards of `responses[i]` to `prompts[i]` (a single prompt string is shared by all)."""
        responses = list(responses)
        prompts = [prompts] * len(responses) if isinstance(prompts, str) else list(prompts)
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts for {len(responses)} responses")
        if not responses:
            return Scores.from_members(np.zeros((len(self.models), 0)))
        encodings = {id(f): f.encode(prompts, responses) for f in self.formatters}
        with torch_threads(self.num_threads):
            members = [self._score_model(m, encodings[id(f)], batch_size) for m, f in zip(self.models, self.formatters)]
        return Scores.from_members(np.stack(members))

    def p_better(self, r_a, r_b) -> np.ndarray:
        """P(A preferred over B) = σ((r_A - r_B) / T) with the fitted temperature."""
        return _p_better(r_a, r_b, self.temperature)


def ensemble_members(path: Path) -> list[Path]:
    """member_0, member_1, ... folders of an ensemble checkpoint, in numeric order."""
    return sorted(path.glob("member_*"), key=lambda p: int(p.name.split("_")[-1]))


def _load_models(src: str | Path) -> tuple[list[RewardModel], float | None]:
    """Models of one source and its ensemble temperature (None for a single model)."""
    path = Path(locate(src))
    members = ensemble_members(path) if path.is_dir() else []
    if not members:
        return [load_rm(src)], None
    info_file = path / ENSEMBLE_FILE
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return [load_rm(m) for m in members], info.get("temperature", 1.0)


def load_scorer(src: str | Path | list, precision: str = "auto", device=None, num_threads: int | None = None) -> Scorer:
    """A Scorer from a checkpoint folder, an HF path/Hub id, an ensemble folder or a list of them.

    A list is one ensemble (its temperature is 1 unless it holds a single model).
    """
    sources = list(src) if isinstance(src, (list, tuple)) else [src]
    loaded = [_load_models(s) for s in sources]
    models = [m for ms, _ in loaded for m in ms]
    temperature = loaded[0][1] if len(sources) == 1 else None
    name = "+".join(Path(str(s)).name or str(s) for s in sources)
    return Scorer(models, name=name, temperature=temperature, precision=precision, device=device,
                  num_threads=num_threads)


def main(argv: list[str] | None = None) -> dict:
    """`python -m rm.score --rm DIR --prompt TEXT --response TEXT [--response TEXT ...] --json`"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rm.score", description="Score responses to one prompt.")
    parser.add_argument("--rm", required=True, action="append",
                        help="checkpoint/ensemble folder, HF reward model or Hub id; repeat for an ensemble")
    parser.add_argument("--prompt", required=True, help="the prompt")
    parser.add_argument("--response", required=True, action="append", help="a response; repeat for several")
    parser.add_argument("--lam", type=float, default=1.0, help="λ of the conservative reward mean - λ·std")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="inference precision")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    scorer = load_scorer(args.rm if len(args.rm) > 1 else args.rm[0], precision=args.precision)
    scores = scorer.score(args.prompt, args.response)
    report = {"rm": scorer.name, "prompt": args.prompt, "responses": args.response,
              "rewards": scores.mean.tolist(), "std": scores.std.tolist(),
              "conservative": scores.conservative(args.lam).tolist(), "temperature": scorer.temperature,
              "p_first_better": scorer.p_better(scores.mean[0], scores.mean[1:]).tolist()}
    if args.json:
        print(json.dumps(report))
    else:
        for text, r, s in zip(args.response, scores.mean, scores.std):
            print(f"{r:+.4f} ± {s:.4f}  {text[:70]!r}")
    return report


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
