"""Rewrite checkpoints of the old "backbone+head" layout as standard Hugging Face model folders.

    python -m rm.convert runs/rm/old                 # in place
    python -m rm.convert runs/rm/old --out runs/rm/new

An ensemble folder converts member by member. A checkpoint that is already a Hugging Face
folder (layout "native" or "pooled") is left as it is (or copied when --out is given).
"""
import argparse
import shutil
from pathlib import Path

from rm.checkpoint import FORMAT, load_rm, locate, read_rm_config, save_rm

RECORDS = ("metrics.json", "curves.jsonl", "rmlab_ensemble.json")  # files kept beside the weights


def _convert_one(src: Path, out: Path) -> bool:
    """Convert one checkpoint folder into `out`; False when it already had the current layout."""
    meta = read_rm_config(src)
    if meta.get("format") == FORMAT:
        if out != src:
            shutil.copytree(src, out, dirs_exist_ok=True)
        return False
    model = load_rm(src)
    save_rm(model, model.tokenizer, out, meta.get("train_config"), meta.get("metrics"), model.temperature)
    if out != src:
        for name in RECORDS:
            if (src / name).is_file():
                shutil.copy2(src / name, out / name)
    return True


def convert(src: str | Path, out: str | Path | None = None) -> list[Path]:
    """Convert a checkpoint or an ensemble of them; returns the folders that were rewritten."""
    src = Path(locate(src))
    out = Path(out) if out is not None else src
    members = sorted(src.glob("member_*"))
    if not members:
        return [out] if _convert_one(src, out) else []
    done = [out / m.name for m in members if _convert_one(m, out / m.name)]
    if out != src:
        for name in RECORDS:
            if (src / name).is_file():
                shutil.copy2(src / name, out / name)
    return done


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(prog="python -m rm.convert", description=__doc__.splitlines()[0])
    parser.add_argument("src", help="checkpoint or ensemble folder to convert")
    parser.add_argument("--out", default=None, help="write the converted checkpoint here (default: in place)")
    args = parser.parse_args(argv)
    done = convert(args.src, args.out)
    print(f"converted {len(done)} checkpoint(s): {', '.join(map(str, done))}" if done
          else f"{args.src}: already a Hugging Face model folder; nothing to convert")
    return done


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
