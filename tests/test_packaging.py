"""The dependency lists of pyproject.toml and environment.yml agree; the package layout holds."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for r in reqs}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip = [p for p in pip if not p.startswith("-e")]
    assert sorted(pip) == sorted(deps)  # same names *and* the same version bounds
    assert _names(pip) == _names(deps)
    assert "fluidsynth" in env["dependencies"]


def test_layout_of_the_design_card():
    for name in ("notebooks", "pianolib", "data", "tests", "environment.yml", "README.md",
                 "pyproject.toml", "Makefile", ".ci/run"):
        assert (ROOT / name).exists(), name


def test_no_private_tensorflow_imports():
    for py in (ROOT / "pianolib").glob("*.py"):
        assert "tensorflow.python" not in py.read_text(), py
