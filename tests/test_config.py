"""One source of configuration: constants from config.py, recipes from configs.py."""

import ast
import pathlib

import pytest

from pianolib import configs
from pianolib.models import ARCHITECTURES

PKG = pathlib.Path(__file__).resolve().parent.parent / "pianolib"
#: Values that must come from pianolib.config (SR, HOP_LENGTH, N_BINS, MIN_MIDI, MAX_MIDI).
CONFIG_VALUES = {16000, 160, 264, 21, 108}


def test_no_module_repeats_the_constants_of_config():
    found = []
    for path in sorted(PKG.glob("*.py")):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                    and node.value in CONFIG_VALUES:
                found.append(f"{path.name}:{node.lineno}: {node.value}")
    assert found == []


def test_every_config_is_complete_and_named_by_its_key():
    for name, cfg in configs.CONFIG_MAP.items():
        assert cfg.name == name
        d = cfg.to_dict()
        assert (d["data"] or d["shards"]) and d["arch"] in ARCHITECTURES
    assert "shipped" in configs.CONFIG_MAP


def test_overrides_and_unknown_names():
    cfg = configs.get_config("default", max_minutes=3, data=["x"], seed=None)
    assert cfg.max_minutes == 3 and cfg.data == ("x",)
    assert cfg.seed == configs.CONFIG_MAP["default"].seed  # None keeps the recipe's value
    with pytest.raises(configs.PianolibError, match="unknown training config"):
        configs.get_config("nope")


def test_cli_defaults_come_from_the_library():
    from pianolib.__main__ import build_parser
    from pianolib.transcribe import DEFAULT_MODELS

    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command").choices
    models = {name: next((a.default for a in s._actions if a.dest == "models"), "-")
              for name, s in sub.items()}
    assert {v for v in models.values() if v != "-"} == {str(DEFAULT_MODELS)}
    train = sub["train"].parse_args([])
    assert train.config == "default" and train.seed is None  # the recipe supplies the rest
