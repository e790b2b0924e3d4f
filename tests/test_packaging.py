"""What ``pip install recsim-env`` installs (issue 21): the simulator alone, on numpy and gymnasium;
the extras ([agents], [data], [experiments], [all]) add the rest. Importing ``recsim_env`` (and the
light parts of ``agents``: the contract, the catalog of defaults) imports nothing heavy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "stable_baselines3", "sb3_contrib", "pandas", "scipy", "sklearn", "hydra",
         "omegaconf", "wandb", "optuna", "matplotlib", "rich", "rliable")  # fmt: skip


def imported_after(statement: str) -> list[str]:
    """The heavy top-level packages in ``sys.modules`` after ``statement`` in a fresh process."""
    code = (
        f"import sys, json; {statement}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_importing_the_simulator_pulls_in_nothing_heavy():
    assert imported_after("import recsim_env") == []
    # the agent contract and where every default lives need neither torch nor SB3
    light = (
        "import agents, agents.catalog, agents.dqn.config, agents.pqn.config, agents.sb3.hparams"
    )
    assert imported_after(light) == []


def test_the_core_depends_on_numpy_and_gymnasium_only():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("<")[0].split("=")[0] for dep in project["dependencies"]}
    assert names == {"numpy", "gymnasium"}
    extras = project["optional-dependencies"]
    assert {"agents", "data", "experiments", "all"} <= set(extras)
    assert any(dep.startswith("torch") for dep in extras["agents"])
    assert any(dep.startswith("hydra-core") for dep in extras["experiments"])
    assert "recsim-env[data]" in extras["experiments"]
    assert extras["all"] == ["recsim-env[agents,data,experiments]"]


@pytest.mark.slow
def test_the_core_installs_alone_in_a_fresh_venv_and_runs_an_env(tmp_path):
    """A fresh venv (no system site-packages), ``pip install <this checkout>`` (pip's cache, the
    package index for numpy and gymnasium): recsim_env imports and runs; torch, pandas and Hydra are
    not there."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # install from a copy: building in place would leave build/ and *.egg-info in the checkout
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("recsim_env", "agents", "experiments", "hydra_plugins"):
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)],
        check=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    code = """
import importlib.util, json
import gymnasium as gym
import recsim_env
envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=4)
obs, info = envs.reset(seed=0)
total = 0.0
for _ in range(20):
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    total += float(reward.sum())
missing = [m for m in ("torch", "pandas", "hydra", "stable_baselines3", "sklearn", "wandb")
           if importlib.util.find_spec(m) is None]
print(json.dumps({"shape": list(obs.shape), "total": total, "missing": missing,
                  "file": recsim_env.__file__}))
"""
    out = subprocess.run(
        [str(python), "-c", code], check=True, env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["shape"][0] == 4
    assert result["missing"] == [
        "torch",
        "pandas",
        "hydra",
        "stable_baselines3",
        "sklearn",
        "wandb",
    ]
    assert str(venv) in result["file"]  # the installed copy, not this checkout


# Installing prints no setuptools deprecation blocks (issue 24): `project.license` is an SPDX
# expression (PEP 639), applied by setuptools >= 77 without the "`project.license` as a TOML table
# is deprecated" warning the old `license = { text = "MIT" }` printed at every metadata build.
def test_pyproject_applies_without_setuptools_warnings(tmp_path):
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    from setuptools.dist import Distribution

    for name in ("pyproject.toml", "README.md"):  # what the [project] table reads
        shutil.copy(ROOT / name, tmp_path / name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = pyprojecttoml.apply_configuration(Distribution(), tmp_path / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"
    messages = [f"{type(w.message).__name__}: {w.message}" for w in caught]
    assert not [m for m in messages if "Deprecat" in m or "license" in m.lower()], messages
    config = pyprojecttoml.read_configuration(tmp_path / "pyproject.toml", expand=False)
    requires = config["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in requires), requires
