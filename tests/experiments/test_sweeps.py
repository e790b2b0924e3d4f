"""Multiruns through the real console script: launchers, failing jobs, the quickstart experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from experiments.integrations.hydra_callbacks import scan_sweep

ROOT = Path(__file__).resolve().parents[2]
RECSIM_TRAIN = Path(sys.executable).parent / "recsim-train"


def recsim_train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    return subprocess.run(
        [str(RECSIM_TRAIN), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_two_by_two_multirun_gives_one_result_dir_per_job(launcher, tmp_path):
    sweep_dir = tmp_path / "sweep"
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    result = recsim_train(
        "-m",
        "agent=random,popularity",
        "seed=0,1",
        "protocol=tiny",
        "protocol.total_steps=320",
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = job_dirs(sweep_dir)
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["num_timesteps"] == 320
        config = OmegaConf.load(job / "config.yaml")
        seen.add((config.agent._target_.rsplit(".", 1)[-1], config.seed))
        assert (job / "metrics.csv").stat().st_size > 0
        assert (job / "checkpoints").is_dir()
    assert seen == {(a, s) for a in ("RandomAgent", "PopularityAgent") for s in (0, 1)}
    assert "4 job(s) completed" in result.stdout + result.stderr


def test_a_failing_job_does_not_stop_the_sweep_and_is_listed(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = recsim_train(
        "-m",
        "agent=linucb",
        "agent.alpha=0.5,-1.0,2.0",  # alpha < 0 is invalid: job 1 fails when the agent is built
        "protocol=tiny",
        "protocol.total_steps=320",
        f"hydra.sweep.dir={sweep_dir}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    statuses = {job["dir"].rsplit("/", 1)[-1]: job["status"] for job in scan_sweep(sweep_dir)}
    assert statuses == {"0": "completed", "1": "failed", "2": "completed"}
    message = "invalid alpha=-1.0 (allowed: a finite number >= 0)"  # recsim_env.validation's
    assert message in (sweep_dir / "1" / "error.txt").read_text()
    # the end-of-sweep report names the job, its overrides and the error
    assert "1 failed" in output and "agent.alpha=-1.0" in output and message in output
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert [f["overrides"] for f in failures] == [
        ["agent=linucb", "agent.alpha=-1.0", "protocol=tiny", "protocol.total_steps=320"]
    ]


def test_multirun_resume_continues_every_job(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "agent=random,linucb", "protocol=tiny", f"hydra.sweep.dir={sweep_dir}"]
    assert recsim_train(*args, "protocol.total_steps=320").returncode == 0
    first = {j.name: (j / "metrics.csv").read_text() for j in job_dirs(sweep_dir)}
    # resuming with a larger budget extends each job from its final checkpoint, in its own dir
    result = recsim_train(*args, "protocol.total_steps=640", "resume=true")
    assert result.returncode == 0, result.stdout + result.stderr
    for job in job_dirs(sweep_dir):
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["num_timesteps"] == 640
        assert (job / "metrics.csv").read_text().startswith(first[job.name])
        assert OmegaConf.load(job / "config.yaml").protocol.total_steps == 640


def test_quickstart_runs_four_agents_and_prints_a_table(tmp_path):
    sweep_dir = tmp_path / "quickstart"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.quickstart",
            "protocol=tiny",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled"),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [j.name for j in job_dirs(sweep_dir)] == ["0", "1", "2", "3"]
    for name in ("dqn", "sb3_dqn", "random", "linucb"):
        assert name in result.stdout
    assert str(sweep_dir.resolve()) in result.stdout


@pytest.mark.slow
def test_gamma_eps_lr_sweep_runs_all_24_jobs(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = recsim_train(
        "sweep=gamma_eps_lr",
        "protocol=tiny",
        "protocol.total_steps=320",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = scan_sweep(sweep_dir)
    assert len(jobs) == 24 and all(j["status"] == "completed" for j in jobs)
