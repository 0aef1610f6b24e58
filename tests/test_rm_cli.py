import argparse

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
