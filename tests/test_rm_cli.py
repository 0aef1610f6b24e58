import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from rm.cli import add_dataclass_args, from_dict
from rm.train import TrainConfig


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, TrainConfig, required=("data",))
    return TrainConfig.from_dict(vars(parser.parse_args(argv)))


def test_options_come_from_the_dataclass():
    config = _parse(["--data", "d.jsonl", "--from-scratch", "--config-overrides", '{"num_hidden_layers": 1}',
                     "--max-pairs", "7", "--no-bootstrap", "--lr", "1e-4"])
    assert config.from_scratch and not config.bootstrap and config.config_overrides == {"num_hidden_layers": 1}
    assert (config.max_pairs, config.lr, config.epochs) == (7, 1e-4, 1)


def test_help_is_the_metadata_help(capsys):
    with pytest.raises(SystemExit):
        _parse(["--help"])
    assert "peak AdamW learning rate" in capsys.readouterr().out


def test_bad_choice_and_missing_required(capsys):
    with pytest.raises(SystemExit):
        _parse(["--data", "d", "--pooling", "max"])
    with pytest.raises(SystemExit):
        _parse([])
    assert "required: --data" in capsys.readouterr().err


def test_from_dict_suggests_close_names():
    with pytest.raises(TypeError, match="Unknown TrainConfig key 'epoch': did you mean 'epochs'"):
        from_dict(TrainConfig, {"epoch": 2})


@dataclass
class Shapes:
    """Every kind of field the analysis CLIs use."""

    rm: list[str] = field(metadata={"help": "one or more models"})
    src: str | None = field(default=None, metadata={"help": "input file"})
    mode: Literal["auto", "table"] = field(default="auto", metadata={"help": "input format"})
    sizes: list[int] | None = field(default=None, metadata={"help": "sizes"})
    names: tuple[str, ...] = field(default=("a",), metadata={"help": "names"})
    hidden: int = field(default=0, metadata={"help": "not an option", "cli": False})


def _shapes(argv):
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, Shapes, positional=("src",))
    return vars(parser.parse_args(argv))


def test_lists_positionals_and_literal_choices():
    assert _shapes(["f.jsonl", "--rm", "a", "b", "--sizes", "1", "2", "--mode", "table"]) == {
        "rm": ["a", "b"], "src": "f.jsonl", "mode": "table", "sizes": [1, 2], "names": ("a",)}
    assert _shapes(["--rm", "a"]) == {"rm": ["a"], "src": None, "mode": "auto", "sizes": None, "names": ("a",)}


def test_literal_choices_and_fields_without_a_default_are_enforced(capsys):
    with pytest.raises(SystemExit):
        _shapes(["--rm", "a", "--mode", "csv"])
    assert "--mode: invalid choice: 'csv'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _shapes(["f.jsonl"])
    assert "required: --rm" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _shapes(["--rm", "a", "--sizes", "x"])
    assert "invalid int value: 'x'" in capsys.readouterr().err
