"""Reward-model checkpoints: one folder with backbone, head, tokenizer and rmlab_config.json.

Layouts (recorded as `layout` in rmlab_config.json):
- "native": the model is an `AutoModelForSequenceClassification` with num_labels=1, saved at
  the folder's top level, so `AutoModelForSequenceClassification.from_pretrained(dir)` gives
  the same scores as `load_rm(dir)`.
- "backbone+head": pooling that no HF head does (e.g. mean); the base model goes in
  `backbone/` and the head in `head.safetensors`, so no HF class loads it half-initialised.
`load_rm` also loads any HF sequence-classification reward model (path or Hub id).
An ensemble is a folder of `member_k/` checkpoints with rmlab_ensemble.json (rm.train writes it;
rm.score.load_scorer loads it). `list_checkpoints(runs)` finds both kinds in `runs/rm/`.
"""
import json
from pathlib import Path

import torch
from torch import nn

from rm.model import RewardModel, load_tokenizer, native_pooling, quiet_transformers

CONFIG_FILE = "rmlab_config.json"
ENSEMBLE_FILE = "rmlab_ensemble.json"
HEAD_FILE = "head.safetensors"
FORMAT = "rmlab-rm/1"


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def save_rm(model: RewardModel, tokenizer, out_dir: str | Path, config: dict | None = None,
            metrics: dict | None = None, temperature: float | None = None) -> Path:
    """Write `model` + `tokenizer` to `out_dir` with rmlab_config.json; return the folder."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if temperature is not None:
        model.temperature = float(temperature)
    body_dir = out if model.native else out / "backbone"
    model.body.config.pad_token_id = tokenizer.pad_token_id  # the native `last` head finds pads by id
    with quiet_transformers():
        model.body.save_pretrained(body_dir)
    if not model.native:
        save_file({k: v.detach().float().contiguous() for k, v in model.head.state_dict().items()}, out / HEAD_FILE)
    tokenizer.save_pretrained(out)
    meta = {
        "format": FORMAT, "layout": "native" if model.native else "backbone+head",
        "pooling": model.pooling, "max_length": model.max_length, "temperature": model.temperature,
        "train_config": config or {}, "metrics": metrics or {},
    }
    (out / CONFIG_FILE).write_text(json.dumps(_jsonable(meta), indent=2))
    return out


def is_rmlab_checkpoint(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def _load_ours(folder: Path, dtype: torch.dtype | None) -> RewardModel:
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification

    meta = json.loads((folder / CONFIG_FILE).read_text())
    kwargs = {"dtype": dtype} if dtype is not None else {}
    native = meta["layout"] == "native"
    with quiet_transformers():  # our own folders: round-trip tests check that nothing is missing
        body = (AutoModelForSequenceClassification.from_pretrained(folder, **kwargs) if native
                else AutoModel.from_pretrained(folder / "backbone", **kwargs))
    head = None
    if not native:
        state = load_file(folder / HEAD_FILE)
        head = nn.Linear(state["weight"].shape[1], 1, bias="bias" in state)
        head.load_state_dict(state)
    return RewardModel(body, meta["pooling"], head, tokenizer=load_tokenizer(str(folder)),
                       max_length=meta["max_length"], temperature=meta.get("temperature", 1.0), meta=meta)


def _load_hf(path_or_id: str, dtype: torch.dtype | None) -> RewardModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path_or_id)
    if config.num_labels != 1:
        raise ValueError(f"{path_or_id} has num_labels={config.num_labels}; a reward model has one scalar "
                         "output. Train one with `python -m rm.train`, or load a sequence-classification "
                         "model saved with num_labels=1")
    kwargs = {"dtype": dtype} if dtype is not None else {}
    body = AutoModelForSequenceClassification.from_pretrained(path_or_id, **kwargs)
    tokenizer = load_tokenizer(path_or_id)
    if body.config.pad_token_id is None:
        body.config.pad_token_id = tokenizer.pad_token_id
    max_length = min(tokenizer.model_max_length, getattr(config, "max_position_embeddings", 512) or 512, 4096)
    return RewardModel(body, native_pooling(config), None, tokenizer=tokenizer, max_length=max_length,
                       meta={"layout": "native", "source": str(path_or_id)})


def load_rm(path_or_id: str | Path, dtype: torch.dtype | None = None) -> RewardModel:
    """Our checkpoint folder, or any HF `*ForSequenceClassification` with num_labels=1 (path/Hub id).

    The returned model is in eval mode and carries `.tokenizer`, `.max_length`, `.temperature`.
    """
    path = Path(path_or_id)
    if path.is_dir() and any(path.glob("member_*")) and not is_rmlab_checkpoint(path):
        raise ValueError(f"{path} is an ensemble (member_*/ folders); load it with rm.score.load_scorer")
    model = _load_ours(path, dtype) if is_rmlab_checkpoint(path) else _load_hf(str(path_or_id), dtype)
    return model.eval()


def read_rm_config(path: str | Path) -> dict:
    """rmlab_config.json of a checkpoint (pooling, max_length, temperature, training config, metrics)."""
    return json.loads((Path(path) / CONFIG_FILE).read_text())


def list_checkpoints(runs: str | Path) -> list[tuple[str, str]]:
    """(name, path) of every finished checkpoint in `runs`/rm, single or ensemble, newest first.

    A folder counts once its rmlab_config.json (single) or rmlab_ensemble.json (ensemble) is
    written, so a run still in progress is not listed; a missing folder lists nothing.
    """
    root = Path(runs) / "rm"
    found = [p for p in root.iterdir() if p.is_dir() and
             ((p / CONFIG_FILE).is_file() or (p / ENSEMBLE_FILE).is_file())] if root.is_dir() else []
    return [(p.name, str(p)) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]
