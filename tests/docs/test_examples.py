"""The scripts under ``examples/`` run (issue 20: examples that cannot rot), each on a small budget
in a subprocess from a temporary directory, with this checkout on ``PYTHONPATH``.

TorchRL and RLlib are optional clients: their examples are skipped, saying so, where the client is
not installed (``pip install torchrl`` / ``pip install "ray[rllib]"``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TINY = [
    "protocol.total_steps=320",
    "protocol.log_every=32",
    "protocol.eval_every=160",
    "protocol.eval_episodes=4",
    "protocol.checkpoint_every=320",
]


def _env(*paths: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(p) for p in (*paths, ROOT)),
        OMP_NUM_THREADS="1",
        WANDB_MODE="disabled",
    )


def run_script(name: str, *args: str, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_custom_drift_fires_its_change_points_and_its_override_composes(tmp_path, compose_cfg):
    out = run_script("custom_drift.py", "--ticks", "2500", "--users", "16", cwd=tmp_path)
    events = json.loads(out.split("drift events at world ticks ", 1)[1].splitlines()[0])
    assert {800, 1600, 2400} <= set(events)
    rewards = next(x for x in out.splitlines() if x.startswith("expected reward per step"))
    oracle, random = (float(x.split()[-1]) for x in rewards.split(", random "))
    assert oracle > random
    # the printed recsim-train line composes to the script's own schedule
    line = next(x for x in out.splitlines() if x.startswith("recsim-train"))
    override = line.split("'")[1]
    cfg = compose_cfg("env=stationary", override)
    sys.path.insert(0, str(EXAMPLES))
    try:
        from custom_drift import DRIFT
    finally:
        sys.path.remove(str(EXAMPLES))
    from omegaconf import OmegaConf

    assert OmegaConf.to_container(cfg.env.kwargs.drift) == DRIFT


def test_sb3_outside_the_runner_trains_saves_and_loads(tmp_path):
    out = run_script("sb3_outside_runner.py", "--steps", "640", "--users", "8", cwd=tmp_path)
    assert "greedy SB3 DQN:" in out and "random:" in out
    assert (tmp_path / "sb3_dqn.zip").is_file()


def _client(module: str, install: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
        if found:
            __import__(module)
    except ImportError as exc:
        pytest.skip(f"{module} does not import here ({exc}); {install}")
    if not found:
        pytest.skip(f"{module} is not installed; {install}")


def test_torchrl_loop(tmp_path):
    _client("torchrl", "pip install torchrl")
    out = run_script("torchrl_loop.py", "--users", "4", "--steps", "10", cwd=tmp_path)
    assert "mean reward per user-step" in out


@pytest.mark.slow
def test_rllib_loop(tmp_path):
    _client("ray.rllib", 'pip install "ray[rllib]"')
    out = run_script("rllib_loop.py", "--iterations", "1", cwd=tmp_path, timeout=900)
    assert "iteration 0:" in out


@pytest.mark.slow
def test_the_plugin_sweep_runs_and_a_plugin_run_resumes_as_documented(tmp_path):
    """``experiment=topic_ctr_sweep`` from the plug-in's search path, then ``resume=<job>`` with
    the command line of docs/plugin.md (the option and the search path given again)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(EXAMPLES)
    train = [sys.executable, "-m", "experiments.run.cli"]
    searchpath = "hydra.searchpath=[file://examples/plugin/my_conf]"
    env = _env(EXAMPLES / "plugin")

    def sh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*train, *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )

    done = sh("experiment=topic_ctr_sweep", searchpath, *TINY, "hydra.sweep.dir=multirun/s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = sorted(p for p in (work / "multirun" / "s").iterdir() if p.name.isdigit())
    assert len(jobs) == 6
    summaries = [json.loads((j / "summary.json").read_text()) for j in jobs]
    assert all(s["status"] == "completed" for s in summaries)
    job = jobs[0]
    # without the option and the search path: refused, nothing trained
    refused = sh(f"resume={job}", "protocol.total_steps=640")
    assert refused.returncode == 2 and "topic_ctr" in refused.stderr, refused.stderr[-2000:]
    again = ("agent=topic_ctr", "experiment=topic_ctr_sweep", searchpath)
    resumed = sh(f"resume={job}", *again, "protocol.total_steps=640")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "completed"
    steps = [int(line.split(",")[0]) for line in (job / "metrics.csv").read_text().splitlines()[1:]]
    assert max(steps) >= 640
