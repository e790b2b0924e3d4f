"""Multirun progress on the console (experiments/integrations/progress.py): a line per job start and
end with rate and ETA, a heartbeat while a job runs, the sweep's jobs done / total and ETA — for
the basic and joblib launchers, through the real runner (``python -m experiments.train``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from experiments.integrations.progress import count_sweep_jobs, format_duration, last_logged_step

ROOT = Path(__file__).resolve().parents[2]


def multirun(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_every_job_start_and_end_and_the_sweep_eta_are_printed(launcher, tmp_path):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    result = multirun(
        "agent=random,popularity",
        "seed=0,1",
        "protocol=tiny",
        "protocol.total_steps=1600",
        "protocol.log_every=160",
        "hydra.callbacks.progress.every_s=0.5",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *extra,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"^\[sweep\] 4 job\(s\) \(\w+Launcher", out, re.M), out
    for k in range(1, 5):
        assert re.search(rf"^\[sweep\] job {k}/4 started: agent=\w+ seed=\d", out, re.M), out
        assert re.search(
            rf"^\[sweep\] job {k}/4 completed in \d+s, [\d,]+ user-steps/s$", out, re.M
        ), out
    for done in range(1, 5):
        assert re.search(rf"^\[sweep\] {done}/4 jobs done, \S+ elapsed, ETA \S+$", out, re.M), out
    # later jobs start with an ETA from the finished ones; a running job has a heartbeat
    assert re.search(r"started: .*; ETA ~\S+ \(mean of \d finished job", out), out
    assert re.search(r"^\[sweep\] job \d/4 (running for|[\d,]+/1,600 user-steps)", out, re.M), out
    # the sweep's own state is one file: every dir of the sweep dir stays a job's
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == list("0123")
    assert (tmp_path / "sweep" / ".progress").read_text().count("\ndone ") == 4


def test_a_single_run_prints_no_sweep_lines(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "agent=random",
            "protocol=tiny",
            "protocol.total_steps=320",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "[sweep]" not in result.stdout


def test_the_total_is_the_basic_sweepers_expansion():
    from omegaconf import OmegaConf

    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        cfg = compose("config", ["sweep=gamma_eps_lr"], return_hydra_config=True)
        # the command line of `recsim-train sweep=gamma_eps_lr seed=0,1` (compose cannot sweep)
        OmegaConf.update(cfg, "hydra.overrides.task", ["sweep=gamma_eps_lr", "seed=0,1"])
        assert count_sweep_jobs(cfg) == 48  # 2 agents × 3 γ × 2 ε × 2 lr × 2 seeds


def test_helpers(tmp_path):
    assert [format_duration(s) for s in (0, 59.4, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]
    assert format_duration(float("nan")) == "?"
    csv = tmp_path / "metrics.csv"
    assert last_logged_step(csv) is None
    csv.write_text("step,key,value\n160,online/reward,1.0\n320,online/reward,1.1\n480,onl")
    assert last_logged_step(csv) == 320  # a torn last line is not a step
