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
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                      for r in extra]
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


def test_a_non_editable_install_finds_its_models_and_samples(tmp_path):
    """`pip install .` (not -e) ships the models and sample clips as package data."""
    import subprocess
    import sys

    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(ROOT)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    code = (
        "import pianolib, pianolib.transcribe as t\n"
        f"assert pianolib.__file__.startswith({str(target)!r}), pianolib.__file__\n"
        "assert (t.DEFAULT_MODELS / 'onset.keras').is_file(), t.DEFAULT_MODELS\n"
        "assert (t.DEFAULT_MODELS / 'decoder.json').is_file()\n"
        "assert len(t.SAMPLE_AUDIO) == 3\n"
        "from pianolib.datasets import read_manifest\n"
        "assert len(read_manifest(t.SAMPLE_DIR)) == 3\n"
        "notes = t.Transcriber().transcribe_file(t.SAMPLE_AUDIO[0])\n"
        "print(len(notes))\n"
    )
    import os

    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split()[-1]) > 20
