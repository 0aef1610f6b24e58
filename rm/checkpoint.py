"""Reward-model checkpoints: standard Hugging Face model folders, plus rmlab_config.json.

Every checkpoint is a folder with config.json (its `architectures`), model.safetensors, the
tokenizer, and rmlab_config.json (pooling, max length, temperature, training config, metrics).
Layouts (`layout` in rmlab_config.json):
- "native": the pooling is the architecture's own (last token for decoders, the pooler for
  encoders), so the folder is an `AutoModelForSequenceClassification` with num_labels=1 and
  `AutoModelForSequenceClassification.from_pretrained(dir)` gives the same scores as `load_rm`.
- "pooled": any other pooling (mean on an encoder, the default for MiniLM). The folder holds
  rm/modeling_rmlab.py and rm/pooling.py and an `auto_map`, so
  `AutoModelForSequenceClassification.from_pretrained(dir, trust_remote_code=True)` gives the
  same scores; without trust_remote_code transformers refuses it rather than load a random head.
- "backbone+head": written before format rmlab-rm/2 (`backbone/` + head.safetensors). It still
  loads; `python -m rm.convert DIR` rewrites it as "pooled".
`load_rm` also loads any HF sequence-classification reward model (path or Hub id).
An ensemble is a folder of `member_k/` checkpoints with rmlab_ensemble.json (rm.train writes it;
rm.score.load_scorer loads it). `list_checkpoints(runs)` finds both kinds in `runs/rm/`.
"""
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from rm.model import RewardModel, load_tokenizer, native_pooling, quiet_transformers

CONFIG_FILE = "rmlab_config.json"
ENSEMBLE_FILE = "rmlab_ensemble.json"
HEAD_FILE = "head.safetensors"  # layout "backbone+head" only
FORMAT = "rmlab-rm/2"
REMOTE_CODE = ("modeling_rmlab.py", "pooling.py")  # what a "pooled" folder carries for transformers
MARKERS = (CONFIG_FILE, ENSEMBLE_FILE, "config.json")  # a folder with one of these holds a model


class NotACheckpoint(ValueError):
    """A path that holds no reward model; the message says where one is, when it can."""


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def non_finite_parameter(model: nn.Module) -> str | None:
    """Name of the first parameter holding NaN or ±inf, or None when all are finite."""
    return next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)


def transformers_model(model: RewardModel):
    """The `PreTrainedModel` that is saved: the seq-cls body (native) or an RmlabRewardModel
    around the same backbone and head (built on the meta device: no weights are copied)."""
    from rm.modeling_rmlab import RmlabRewardConfig, RmlabRewardModel

    if model.native:
        return model.body
    backbone = {k: v for k, v in model.body.config.to_dict().items() if k != "_name_or_path"}
    config = RmlabRewardConfig(backbone=backbone, pooling=model.pooling, pad_token_id=model.body.config.pad_token_id)
    RmlabRewardConfig.register_for_auto_class()  # save_pretrained then copies the code and writes auto_map
    RmlabRewardModel.register_for_auto_class("AutoModelForSequenceClassification")
    with torch.device("meta"):
        wrapper = RmlabRewardModel(config)
    wrapper.backbone, wrapper.score = model.body, model.head
    return wrapper


def save_rm(model: RewardModel, tokenizer, out_dir: str | Path, config: dict | None = None,
            metrics: dict | None = None, temperature: float | None = None) -> Path:
    """Write `model` + `tokenizer` to `out_dir` with rmlab_config.json; return the folder.

    Refuses (ValueError, nothing written) a model with a NaN or infinite weight.
    """
    bad = non_finite_parameter(model)
    if bad is not None:
        raise ValueError(f"not saving {out_dir}: parameter {bad} holds NaN or inf values (training diverged)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if temperature is not None:
        model.temperature = float(temperature)
    model.body.config.pad_token_id = tokenizer.pad_token_id  # the native `last` head finds pads by id
    layout = "native" if model.native else "pooled"
    stale = ["backbone", HEAD_FILE, *(REMOTE_CODE if model.native else ())]  # other layouts' files
    for name in stale:
        shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else (out / name).unlink(missing_ok=True)
    with quiet_transformers():
        transformers_model(model).save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        "format": FORMAT, "layout": layout, "pooling": model.pooling, "max_length": model.max_length,
        "temperature": model.temperature, "train_config": config or {}, "metrics": metrics or {},
    }
    (out / CONFIG_FILE).write_text(json.dumps(_jsonable(meta), indent=2))
    return out


def is_rmlab_checkpoint(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


# --- loading ------------------------------------------------------------------------------
# layout -> loader(folder, from_pretrained kwargs) -> (body, head or None)

def _load_native(folder: Path, kwargs: dict):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, **kwargs), None


def _load_pooled(folder: Path, kwargs: dict):
    from rm.modeling_rmlab import RmlabRewardModel  # our own copy of the class: no remote code runs

    hf = RmlabRewardModel.from_pretrained(folder, **kwargs)
    return hf.backbone, hf.score


def _load_backbone_head(folder: Path, kwargs: dict):
    from safetensors.torch import load_file
    from transformers import AutoModel

    state = load_file(folder / HEAD_FILE)
    head = nn.Linear(state["weight"].shape[1], 1, bias="bias" in state)
    head.load_state_dict(state)
    return AutoModel.from_pretrained(folder / "backbone", **kwargs), head


LAYOUTS: dict[str, Callable] = {"native": _load_native, "pooled": _load_pooled, "backbone+head": _load_backbone_head}


def _load_ours(folder: Path, dtype: torch.dtype | None) -> RewardModel:
    meta = read_rm_config(folder)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    with quiet_transformers():  # our own folders: round-trip tests check that nothing is missing
        body, head = LAYOUTS[meta["layout"]](folder, kwargs)
    tokenizer = load_tokenizer(str(folder), config=body.config)  # a "pooled" config.json needs remote code
    return RewardModel(body, meta["pooling"], head, tokenizer=tokenizer,
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


def checkpoints_below(folder: str | Path, depth: int = 3) -> list[Path]:
    """Folders under `folder` (at most `depth` levels down) that hold a model, shallowest first."""
    found, level = [], [Path(folder)]
    for _ in range(depth):
        level = sorted(p for d in level for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        found += [p for p in level if any((p / m).is_file() for m in MARKERS)]
        level = [p for p in level if p not in found]
    return found


def locate(src: str | Path) -> str:
    """`src` unchanged when it can hold a model (a model folder or a Hub id); else a clear error.

    A folder without a model names the ones below it ("did you mean ..."); a missing local path
    (one whose parent folder exists, or that starts with / . ~) is not taken for a Hub id.
    """
    path = Path(src).expanduser()
    if path.is_dir():
        if any((path / m).is_file() for m in MARKERS) or any(path.glob("member_*")):
            return str(src)
        below = checkpoints_below(path)
        hint = (f"; did you mean {' or '.join(str(p) for p in below[:3])}?" if below else
                "; give a folder written by `python -m rm.train` (or an HF reward model, or a Hub id)")
        raise NotACheckpoint(f"{src} is not a reward-model checkpoint (no {CONFIG_FILE} or config.json){hint}")
    if path.exists():
        raise NotACheckpoint(f"{src} is a file; a reward model is a folder (or a Hub id 'owner/name')")
    local = str(src).startswith(("/", ".", "~")) or str(src).count("/") > 1 or (
        path.parent != Path(".") and path.parent.is_dir())
    if local:
        raise FileNotFoundError(f"{src}: no such checkpoint folder (a Hub model id looks like 'owner/name')")
    return str(src)


def load_rm(path_or_id: str | Path, dtype: torch.dtype | None = None) -> RewardModel:
    """Our checkpoint folder, or any HF `*ForSequenceClassification` with num_labels=1 (path/Hub id).

    The returned model is in eval mode and carries `.tokenizer`, `.max_length`, `.temperature`.
    """
    path = Path(locate(path_or_id))
    if path.is_dir() and any(path.glob("member_*")) and not is_rmlab_checkpoint(path):
        raise ValueError(f"{path} is an ensemble (member_*/ folders); load it with rm.score.load_scorer")
    model = _load_ours(path, dtype) if is_rmlab_checkpoint(path) else _load_hf(str(path_or_id), dtype)
    return model.eval()


def read_rm_config(path: str | Path) -> dict:
    """rmlab_config.json of a checkpoint (pooling, max_length, temperature, training config, metrics)."""
    return json.loads((Path(path) / CONFIG_FILE).read_text())


# --- listing ------------------------------------------------------------------------------

def _numbers(obj) -> list[float]:
    """Every number inside a JSON value (nested dicts and lists included)."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    return [x for v in values for x in _numbers(v)]


def is_finite_checkpoint(folder: str | Path) -> bool:
    """False when the records of a checkpoint show a NaN or infinite metric, temperature or last
    training loss (a diverged run saved before rm.train refused to save one)."""
    folder = Path(folder)
    record = folder / (CONFIG_FILE if (folder / CONFIG_FILE).is_file() else ENSEMBLE_FILE)
    try:
        meta = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    numbers = _numbers(meta.get("metrics", {})) + _numbers(meta.get("temperature", 1.0))
    last = _last_line(folder / "curves.jsonl")
    numbers += _numbers(json.loads(last).get("loss", 0.0)) if last else []
    return all(math.isfinite(x) for x in numbers)


def _last_line(path: Path, tail: int = 65536) -> str | None:
    """The last non-empty line of a text file, reading only its end (curves grow with every step)."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, 2) - tail))
        lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else None


def list_checkpoints(runs: str | Path) -> list[tuple[str, str]]:
    """(name, path) of every finished checkpoint in `runs`/rm, single or ensemble, newest first.

    A folder counts once its rmlab_config.json (single) or rmlab_ensemble.json (ensemble) is
    written, so a run still in progress is not listed; a missing folder lists nothing; a
    checkpoint whose records hold NaN (a diverged run) is never listed.
    """
    root = Path(runs) / "rm"
    found = [p for p in root.iterdir() if p.is_dir() and
             ((p / CONFIG_FILE).is_file() or (p / ENSEMBLE_FILE).is_file())] if root.is_dir() else []
    found = [p for p in found if is_finite_checkpoint(p)]
    return [(p.name, str(p)) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]
