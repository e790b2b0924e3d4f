"""``hydra/launcher=batched``: real Hydra multiruns on tiny budgets through the console script.

What is checked: the plan (which jobs form populations, how groups are split for workers); a sweep
mixing our DQN with a baseline writes one run dir per job that ``recsim-compare`` reads exactly as
it reads the basic launcher's (same configs, overrides, statuses and metrics within the population
tolerance); a member with an invalid hyperparameter fails alone with the usual error and is listed
in ``failures.json``; populations run in joblib workers (``n_jobs=2``); a completed sweep resumed
with ``resume=true`` trains nothing again.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from experiments.analysis.compare.load import discover_runs
from experiments.integrations.batched_launcher import Unit, plan
from experiments.integrations.hydra_callbacks import FAILURES_FILE, scan_sweep

ROOT = Path(__file__).resolve().parents[2]
TINY = ("protocol=tiny", "protocol.total_steps=320")
# members of a population equal separate runs up to floating-point reassociation (batched matmuls)
RTOL = 1e-4


def recsim_train(
    *args: str, timeout: float = 300, importable: Path | None = None
) -> subprocess.CompletedProcess:
    """``recsim-train`` of this checkout (``python -m experiments.train``); ``importable``: a
    folder whose modules the jobs can import (a test's own agents)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    if importable is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(importable), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def by_overrides(sweep_dir: Path) -> dict[tuple[str, ...], object]:
    """``recsim-compare``'s view of a sweep, keyed by each run's overrides."""
    return {tuple(run.overrides): run for run in discover_runs([sweep_dir])}


# ------------------------------------------------------------------------------------ the plan
def test_plan_groups_compatible_jobs_and_keeps_the_others_ordinary():
    keys = ["dqn", None, "dqn", "pqn", "dqn", None, "pqn"]
    units = plan(keys)
    assert Unit((0, 2, 4), population=True) in units
    assert Unit((3, 6), population=True) in units
    assert Unit((1,), population=False) in units and Unit((5,), population=False) in units
    assert sorted(p for u in units for p in u.positions) == list(range(len(keys)))


def test_plan_splits_groups_for_workers_and_by_max_population():
    keys = ["a"] * 5 + ["b"]
    assert sorted(len(u.positions) for u in plan(keys, n_jobs=2) if u.population) == [2, 3]
    capped = plan(keys, max_population=2)
    assert sorted(len(u.positions) for u in capped) == [1, 1, 2, 2]
    # a part of one job, and a group of one, run as ordinary jobs
    assert all(not u.population for u in capped if len(u.positions) == 1)
    with pytest.raises(ValueError, match="max_population=0"):
        plan(keys, max_population=0)


def test_batched_preset_composes():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=batched"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.startswith("hydra_plugins.")  # Hydra instantiates only plugins
    assert launcher._target_.endswith("BatchedLauncher")
    assert launcher.n_jobs == 1 and launcher.max_population is None


# ------------------------------------------------------------------------------------ sweeps
def test_a_failing_member_fails_alone(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = recsim_train(
        "-m",
        "agent=dqn",
        "agent.gamma=0.5,1.5",  # γ > 1 is invalid: that member fails when its agent is built
        "seed=0",
        *TINY,
        "hydra/launcher=batched",
        f"hydra.sweep.dir={sweep_dir}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 population(s) of 2 job(s)" in output
    statuses = {job["dir"].rsplit("/", 1)[-1]: job["status"] for job in scan_sweep(sweep_dir)}
    assert statuses == {"0": "completed", "1": "failed"}
    failures = json.loads((sweep_dir / FAILURES_FILE).read_text())
    assert [f["dir"].rsplit("/", 1)[-1] for f in failures] == ["1"]
    assert "invalid DQNConfig.gamma=1.5" in failures[0]["error"]
    assert "invalid DQNConfig.gamma=1.5" in (sweep_dir / "1" / "error.txt").read_text()
    for job in ("0", "1"):  # Hydra's own files, as for a separate job
        hydra_dir = sweep_dir / job / ".hydra"
        assert {p.name for p in hydra_dir.iterdir()} == {
            "config.yaml",
            "hydra.yaml",
            "overrides.yaml",
        }
    assert "completed" in output and "job 2/2 failed" in output  # progress lines per member
    # each member's train.log: its own records, as Hydra's job logging writes them for a job
    assert "invalid DQNConfig.gamma=1.5" in (sweep_dir / "1" / "train.log").read_text()
    ok_log = (sweep_dir / "0" / "train.log").read_text()
    assert f"run dir {sweep_dir / '0'}" in ok_log and "gamma=1.5" not in ok_log


@pytest.mark.slow
def test_batched_run_dirs_read_like_the_basic_launchers(tmp_path):
    """The same sweep (our DQN, two seeds, and a baseline) through both launchers."""
    args = ["-m", "agent=dqn,random", "seed=0,1", *TINY]
    dirs = {}
    for launcher in ("basic", "batched"):
        dirs[launcher] = tmp_path / launcher
        result = recsim_train(
            *args, f"hydra/launcher={launcher}", f"hydra.sweep.dir={dirs[launcher]}"
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "4 job(s) completed" in output
    assert "1 population(s) of 2 job(s), 2 ordinary job(s)" in output
    basic, batched = by_overrides(dirs["basic"]), by_overrides(dirs["batched"])
    assert basic.keys() == batched.keys() and len(basic) == 4
    for overrides, ref in basic.items():
        run = batched[overrides]
        assert run.status == ref.status == "completed"
        assert run.config == ref.config and run.choices == ref.choices
        assert Path(run.path).name == Path(ref.path).name  # the same job number
        assert set(run.logged_keys()) == set(ref.logged_keys())
        for key in ("online/reward", "eval/return", "num_timesteps"):
            assert math.isclose(run.metric(key), ref.metric(key), rel_tol=RTOL), (overrides, key)
        steps, values = run.series("online/reward")
        ref_steps, ref_values = ref.series("online/reward")
        np.testing.assert_array_equal(steps, ref_steps)
        np.testing.assert_allclose(values, ref_values, rtol=RTOL)
        names = {p.name for p in Path(run.path).iterdir()} - {".lock"}
        assert names == {p.name for p in Path(ref.path).iterdir()} - {".lock"}
        run_json = json.loads((Path(run.path) / "run.json").read_text())
        ref_json = json.loads((Path(ref.path) / "run.json").read_text())
        assert (
            run_json["name"] == ref_json["name"] and run_json["overrides"] == ref_json["overrides"]
        )


@pytest.mark.slow
def test_populations_in_joblib_workers_and_resume(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "agent=dqn",
        "seed=0,1,2,3",
        *TINY,
        "hydra/launcher=batched",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    result = recsim_train(*args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 population(s) of 2+2 job(s)" in output and "4 job(s) completed" in output
    summaries = {
        p.name: json.loads((p / "summary.json").read_text())
        for p in sweep_dir.iterdir()
        if p.is_dir()
    }
    assert sorted(summaries) == ["0", "1", "2", "3"]
    assert all(s["status"] == "completed" and s["num_timesteps"] == 320 for s in summaries.values())
    # the whole sweep again with resume=true: every job is completed, none is trained again
    again = recsim_train(*args, "resume=true")
    assert again.returncode == 0, again.stdout + again.stderr
    for name, before in summaries.items():
        after = json.loads((sweep_dir / name / "summary.json").read_text())
        assert after["online/reward"] == before["online/reward"]
        assert after["wall_time_s"] == before["wall_time_s"]  # the training's, kept


# ------------------------------------------------------------------------------------ the benchmark
def test_bench_scales_the_sweeps_protocol_and_reports_the_targets(tmp_path):
    from experiments.bench.population_sweep import format_rows, protocol_overrides, sweep_command

    assert protocol_overrides(200_000) == ["protocol.total_steps=200000"]  # the sweep's own
    assert protocol_overrides(20_000) == [
        "protocol.total_steps=20000",
        "protocol.eval_every=10000",
        "protocol.log_every=500",
        "protocol.checkpoint_every=20000",
        "protocol.eval_episodes=102",
    ]
    command = sweep_command("pqn", "batched", 3, 20_000, 2, tmp_path)
    assert "hydra.sweeper.params.agent=pqn" in command and "seed=0,1,2" in command
    assert "hydra/launcher=batched" in command and "hydra.launcher.n_jobs=2" in command
    sweep = {"completed": 36, "mean_online_reward": 0.5}
    row = {
        "agent": "dqn",
        "runs": 36,
        "total_steps": 20_000,
        "cpu_count": 2,
        "joblib": {"wall_s": 900.0, **sweep},
        "batched": {"wall_s": 100.0, **sweep},
        "ratio": 9.0,
        "batched_projected_full_s": 1000.0,
    }
    text = format_rows([row])
    assert "9.00x faster than joblib (target >= 8x: met)" in text
    assert "16.7 min projected" in text and "(target <= 20 min on 2 cores: met)" in text
    text = format_rows([dict(row, ratio=2.0, batched_projected_full_s=1500.0)])
    assert "target >= 8x: NOT met" in text and "20 min on 2 cores: NOT met" in text


@pytest.mark.slow
def test_a_killed_population_is_recorded_and_the_sweep_goes_on(tmp_path):
    """kill -9 of the population's process: its members are recorded as killed, the ordinary
    job after it still runs, and the failure report lists the members."""
    import signal
    import time

    from experiments.run.rundir import RunDir

    sweep_dir = tmp_path / "sweep"
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    command = [sys.executable, "-m", "experiments.train", "-m", "agent=dqn,random", "seed=0,1"]
    command += ["protocol=tiny", "protocol.total_steps=3000", "hydra/launcher=batched"]
    sweep = subprocess.Popen(
        [*command, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        holder = None
        while holder is None:  # the population's process holds its first member's run dir
            assert time.monotonic() < deadline and sweep.poll() is None
            time.sleep(0.2)
            if (sweep_dir / "0" / "metrics.csv").exists():
                holder = RunDir(sweep_dir / "0").lock_holder()
        assert holder != sweep.pid  # a forked child, not the sweep's process
        os.kill(holder, signal.SIGKILL)
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, output
    statuses = {job["dir"].rsplit("/", 1)[-1]: job["status"] for job in scan_sweep(sweep_dir)}
    assert statuses == {"0": "failed", "1": "failed", "2": "completed", "3": "completed"}
    for member in ("0", "1"):
        assert "killed by signal SIGKILL" in (sweep_dir / member / "error.txt").read_text()
    failures = json.loads((sweep_dir / FAILURES_FILE).read_text())
    assert sorted(f["dir"].rsplit("/", 1)[-1] for f in failures) == ["0", "1"]


@pytest.mark.slow
def test_population_members_each_log_their_own_wandb_run(tmp_path):
    """logger=wandb (offline): every member's W&B run is complete and reads like its run dir
    (members train at the same time in one process with the real population code)."""
    pytest.importorskip("wandb")
    from experiments.analysis.compare.load import load_offline_wandb_run

    sweep_dir = tmp_path / "sweep"
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "-m",
            "agent=dqn",
            "seed=0,1",
            *TINY,
            "logger=wandb",
            "hydra/launcher=batched",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 population(s) of 2 job(s)" in output and "2 job(s) completed" in output
    for job in ("0", "1"):
        (offline,) = (sweep_dir / job / "wandb").glob("offline-run-*")
        run = load_offline_wandb_run(offline)
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        assert run.status == "completed"
        assert run.summary["online/reward"] == pytest.approx(summary["online/reward"])
        assert run.config["seed"] == int(job)


@pytest.mark.slow
def test_ctrl_c_interrupts_every_member_and_resume_completes_them(tmp_path):
    """SIGINT to the sweep's process group (Ctrl-C in a terminal), populations in joblib
    workers: every started member checkpoints and stops (``interrupted``); the same command with
    ``resume=true`` completes all of them."""
    import signal
    import time

    sweep_dir = tmp_path / "sweep"
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    command = [sys.executable, "-m", "experiments.train", "-m", "agent=dqn", "seed=0,1,2,3"]
    command += ["protocol=tiny", "protocol.total_steps=6400", "hydra/launcher=batched"]
    command += ["hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep_dir}"]
    sweep = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 180
        while not all((sweep_dir / j / "metrics.csv").exists() for j in "0123"):
            assert time.monotonic() < deadline and sweep.poll() is None
            time.sleep(0.2)
        os.killpg(sweep.pid, signal.SIGINT)
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    statuses = {job["dir"].rsplit("/", 1)[-1]: job["status"] for job in scan_sweep(sweep_dir)}
    assert set(statuses) == set("0123"), output
    assert set(statuses.values()) <= {"interrupted", "completed"}, (statuses, output)
    assert "interrupted" in statuses.values(), output
    again = recsim_train(*command[3:], "resume=true")
    assert again.returncode == 0, again.stdout + again.stderr
    for job in "0123":
        summary = json.loads((sweep_dir / job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["num_timesteps"] == 6400


@pytest.mark.parametrize(
    ("n_jobs", "max_population", "message"),
    [
        (0, None, "invalid hydra.launcher.n_jobs=0 (allowed: an integer >= 1)"),
        (1, 0, "invalid hydra.launcher.max_population=0"),
    ],
)
def test_launcher_options_are_checked_naming_the_key(n_jobs, max_population, message):
    from hydra_plugins.recsim_batched_launcher.batched_launcher import BatchedLauncher
    from recsim_env.validation import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        BatchedLauncher(n_jobs=n_jobs, max_population=max_population, backend="local")


def test_update_floor_bench_measures_both_calls_and_projects_the_grid(capsys):
    """``python -m experiments.bench.update_floor`` (the CPU floor of a DQN sweep; figures in
    docs/fast-sweeps.md): both timings are measured and the projection follows from them."""
    from experiments.bench.update_floor import main

    args = [
        "--members",
        "2",
        "--calls",
        "2",
        "--runs",
        "3",
        "--total-steps",
        "1600",
        "--cores",
        "1",
    ]
    result = main(args)
    assert result["one_ms"] > 0 and result["amortised_ms"] > 0
    # 1,600 user-steps at B = 16 = 100 gradient steps per run, 3 runs, 1 core
    assert math.isclose(result["floor_min"], 3 * 100 * result["amortised_ms"] / 1e3 / 60)
    assert "(the floor)" in capsys.readouterr().out
