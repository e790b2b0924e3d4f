"""Launchers beyond one process: Ray (extra ``ray``) and SLURM/local via submitit (extra ``slurm``).

The presets in ``conf/hydra/launcher/`` compose (fast; skipped without the extra). The slow tests
run a real 2-job multirun: on a local Ray cluster bound to 127.0.0.1 (started by the test, stopped
through its own process group) and with submitit's local executor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
BIN = Path(sys.executable).parent


def compose_launcher(name: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    return cfg.hydra.launcher


def recsim_train(*args: str, env: dict | None = None, timeout: float = 300):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", **(env or {}))
    return subprocess.run(
        [str(BIN / "recsim-train"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def check_two_jobs(sweep_dir: Path) -> None:
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1"]
    agents = set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["num_timesteps"] == 640
        assert (job / "metrics.csv").stat().st_size > 0 and (job / "checkpoints").is_dir()
        agents.add(OmegaConf.load(job / "config.yaml").agent._target_.rsplit(".", 1)[-1])
    assert agents == {"RandomAgent", "LinUCB"}


# ---------------------------------------------------------------------------------------- presets
def test_slurm_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    launcher = compose_launcher("slurm")
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.timeout_min > 0 and launcher.array_parallelism >= 1
    assert launcher.max_num_timeout >= 1  # requeued jobs resume (with resume=true)
    assert "export WANDB_MODE=offline" in launcher.setup  # compute nodes: no network
    assert launcher.submitit_folder.endswith("/.submitit/%j")  # under the sweep dir


def test_ray_cluster_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    launcher = compose_launcher("ray_cluster")
    assert launcher._target_.endswith("ray_launcher.RayLauncher")
    assert launcher.ray.init.address == "auto"
    # joining a running cluster fails if the plugin's default object store size is passed
    assert "object_store_memory" in launcher.ray.init
    assert launcher.ray.init.object_store_memory is None
    assert launcher.ray.remote.num_cpus == 1


# ---------------------------------------------------------------------------------------- ray
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture
def ray_head(tmp_path):
    """A 2-CPU Ray head on 127.0.0.1 (``ray start --block`` in its own process group)."""
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are long
    log_path = tmp_path / "ray_head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                f"--ray-client-server-port={free_port()}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, **RAY_ENV),
            start_new_session=True,  # the head and everything it spawns: one process group
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log_path.read_text():
            assert head.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and _group_alive(head.pid):
                head.poll()
                time.sleep(0.5)
        head.poll()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ray_launcher_runs_a_multirun_on_a_local_cluster(ray_head, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = recsim_train(
        "-m",
        "agent=random,linucb",
        "protocol=tiny",
        "hydra/launcher=ray_cluster",
        f"hydra.launcher.ray.init.address={ray_head}",
        f"hydra.sweep.dir={sweep_dir}",
        env=RAY_ENV,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Ray Launcher is launching 2 jobs" in output
    assert f"Connecting to existing Ray cluster at address: {ray_head}" in output
    assert "(_run_job pid=" in output  # the jobs ran in Ray workers
    check_two_jobs(sweep_dir)
    assert "2 job(s) completed" in output


# ---------------------------------------------------------------------------------------- submitit
@pytest.mark.slow
def test_submitit_local_launcher_runs_a_multirun(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep_dir = tmp_path / "sweep"
    result = recsim_train(
        "-m",
        "agent=random,linucb",
        "protocol=tiny",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.cpus_per_task=1",
        f"hydra.sweep.dir={sweep_dir}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Submitit 'local' sweep output dir" in output
    check_two_jobs(sweep_dir)
    # each job ran as its own submitit job (its own process, with its own logs)
    logs = list((sweep_dir / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2, logs
