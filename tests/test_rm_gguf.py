"""rm.gguf: a plain copy is made once, reused, renewed when the file changes, and skipped when unwritable."""
import os

import torch

from rm import gguf as G
from rm.testing import tiny_decoder


def loader(folder, calls):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load():
        calls.append(1)
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    return load


def test_copy_is_made_once_then_reused_and_loads_the_same_weights(tmp_path):
    from transformers import AutoModelForCausalLM

    folder = tiny_decoder(tmp_path / "m")
    source = tmp_path / "m.Q4.gguf"
    source.write_bytes(b"stand-in for a gguf file")
    calls = []
    first = G.plain_copy(source, loader(folder, calls), root=tmp_path / "cache")
    second = G.plain_copy(source, loader(folder, calls), root=tmp_path / "cache")
    assert first == second and calls == [1] and first.parent == tmp_path / "cache" / "gguf"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in first.iterdir()}
    assert not [p for p in first.parent.iterdir() if ".tmp" in p.name]  # the scratch folder was renamed
    torch.manual_seed(0)
    original = AutoModelForCausalLM.from_pretrained(folder)
    copied = AutoModelForCausalLM.from_pretrained(first)
    for (name, a), (_, b) in zip(original.state_dict().items(), copied.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_changed_file_gets_a_new_copy(tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"one")
    before = G.copy_folder(source, "causal-lm", tmp_path)
    os.utime(source, ns=(1, 1))
    assert G.copy_folder(source, "causal-lm", tmp_path) != before
    assert G.copy_folder(source, "seq-cls", tmp_path) != G.copy_folder(source, "causal-lm", tmp_path)


def test_unwritable_cache_returns_none_and_leaves_nothing(tmp_path):
    folder = tiny_decoder(tmp_path / "m")
    source = tmp_path / "m.gguf"
    source.write_bytes(b"x")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    calls = []
    assert G.plain_copy(source, loader(folder, calls), root=blocker) is None and calls == [1]
    assert blocker.read_text().startswith("a file")


def test_cache_root_from_env():
    assert G.cache_root({"RMLAB_CACHE": "/x/y"}).as_posix() == "/x/y"
    assert G.cache_root({}).name == "rmlab"


def test_plain_source_leaves_other_sources_alone():
    assert G.plain_source("sentence-transformers/all-MiniLM-L6-v2") == ("sentence-transformers/all-MiniLM-L6-v2", {})


def test_a_gguf_backbone_is_read_from_the_plain_copy_made_once(tmp_path, monkeypatch):
    """The reward model and the policy share the causal-LM copy; the second load de-quantizes nothing."""
    from transformers import AutoModelForCausalLM

    from rm.model import build_reward_model, load_tokenizer

    folder = tiny_decoder(tmp_path / "m")
    source = tmp_path / "m.Q4.gguf"
    source.write_bytes(b"stand-in for a gguf file")
    calls = []

    def load_gguf(where, name):
        assert (where, name) == (str(tmp_path), "m.Q4.gguf")
        return loader(folder, calls)()
    monkeypatch.setattr(G, "load_gguf", load_gguf)
    monkeypatch.setenv("RMLAB_CACHE", str(tmp_path / "cache"))
    copy, kwargs = G.plain_source(str(source))
    assert kwargs == {} and copy == str(G.copy_folder(source, "causal-lm", tmp_path / "cache")) and calls == [1]
    model = build_reward_model(str(source), "last")
    tokenizer = load_tokenizer(str(source))
    assert calls == [1]  # both read the copy
    torch.manual_seed(0)
    original = AutoModelForCausalLM.from_pretrained(folder).model.state_dict()
    for name, tensor in model.body.base_model.state_dict().items():  # native: a LlamaForSequenceClassification
        assert torch.equal(tensor, original[name]), name
    assert tokenizer("hello there").input_ids == loader(folder, [])()[1]("hello there").input_ids
