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
    """``recsim-train`` of this checkout (``python -m experiments.train``: the console script's
    ``main``; the venv's script would import the checkout it was installed from)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
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


def ray_home(tmp_path: Path, token: bool) -> dict[str, str]:
    """The environment of a user whose home holds a Ray auth token (``~/.ray/auth_token``, as
    ``ray get-auth-token --generate`` writes it) or none. Ray ≥ 2.5x: a head started with a token
    runs in token mode, ``ray.init()`` of a private instance always does."""
    home = tmp_path / ("home-token" if token else "home")
    (home / ".ray").mkdir(parents=True, exist_ok=True)
    if token:
        import uuid

        (home / ".ray" / "auth_token").write_text(uuid.uuid4().hex)
    env = dict(RAY_ENV, HOME=str(home))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        env[key] = ""  # removed below: the user's own settings must not leak into the test
    return env


def _env_without_blanks(env: dict[str, str]) -> dict[str, str]:
    merged = dict(os.environ, **env)
    return {k: v for k, v in merged.items() if not (k in env and v == "")}


@pytest.fixture(params=[False, True], ids=["no-token", "token"])
def ray_head(request, tmp_path):
    """A 2-CPU Ray head on 127.0.0.1 (``ray start --block`` in its own process group), started by
    a user with or without a Ray auth token in their home; yields ``(address, env)``."""
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    env = ray_home(tmp_path, request.param)
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
            env=_env_without_blanks(env),
            start_new_session=True,  # the head and everything it spawns: one process group
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log_path.read_text():
            assert head.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        if request.param:  # the head saw the token: it runs in token mode
            assert "Token authentication is enabled" in log_path.read_text(), log_path.read_text()
        yield f"127.0.0.1:{port}", env
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


def run_with_env(env: dict[str, str], *args: str, timeout: float = 300):
    full = _env_without_blanks(dict(env, OMP_NUM_THREADS="1", WANDB_MODE="disabled"))
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )


@pytest.mark.slow
def test_ray_launcher_runs_a_multirun_on_a_local_cluster(ray_head, tmp_path):
    """The ray_cluster preset with an explicit cluster address, for a user with and without a
    Ray auth token (with one the head runs in token mode: ray.init of an explicit address does
    not switch to it by itself, experiments.integrations.ray_auth does)."""
    address, env = ray_head
    sweep_dir = tmp_path / "sweep"
    result = run_with_env(
        env,
        "-m",
        "agent=random,linucb",
        "protocol=tiny",
        "hydra/launcher=ray_cluster",
        f"hydra.launcher.ray.init.address={address}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Ray Launcher is launching 2 jobs" in output
    assert f"Connecting to existing Ray cluster at address: {address}" in output
    assert "(_run_job pid=" in output  # the jobs ran in Ray workers
    check_two_jobs(sweep_dir)
    assert "2 job(s) completed" in output
    assert "InvalidAuthToken" not in output


@pytest.mark.slow
@pytest.mark.parametrize("token", [False, True], ids=["no-token", "token"])
def test_ray_launcher_runs_a_multirun_on_a_private_instance(token, tmp_path):
    """``hydra/launcher=ray``: a private Ray instance started by the launcher (Ray ≥ 2.5x starts
    it in token mode, writing a token into the home if there is none)."""
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    env = ray_home(tmp_path, token)
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    sweep_dir = tmp_path / "sweep"
    try:
        result = run_with_env(
            env,
            "-m",
            "agent=random,linucb",
            "protocol=tiny",
            "hydra/launcher=ray",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
            f"+hydra.launcher.ray.init._temp_dir={temp_dir}",
            f"hydra.sweep.dir={sweep_dir}",
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Ray Launcher is launching 2 jobs" in output
    check_two_jobs(sweep_dir)
    assert "InvalidAuthToken" not in output


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


# ---------------------------------------------------------------------------------------- ray auth
def test_ray_token_is_found_where_ray_looks_and_an_explicit_mode_is_kept(tmp_path, monkeypatch):
    from omegaconf import OmegaConf as OC

    from experiments.integrations.ray_auth import RayTokenAuth, ray_token_available

    home = tmp_path / "home"
    assert not ray_token_available({}, home)
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("")
    assert not ray_token_available({}, home)  # an empty file is no token
    (home / ".ray" / "auth_token").write_text("abc123")
    assert ray_token_available({}, home)
    assert ray_token_available({"RAY_AUTH_TOKEN": "x"}, tmp_path / "nowhere")
    assert not ray_token_available({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")}, home)

    ray_cfg = OC.create({"hydra": {"launcher": {"_target_": "x.ray_launcher.RayLauncher"}}})
    basic = OC.create({"hydra": {"launcher": {"_target_": "x.BasicLauncher"}}})
    monkeypatch.setenv("HOME", str(home))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    RayTokenAuth().on_multirun_start(basic)
    assert "RAY_AUTH_MODE" not in os.environ  # not a Ray launcher: nothing changes
    RayTokenAuth().on_multirun_start(ray_cfg)
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    RayTokenAuth().on_multirun_start(ray_cfg)
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # the user's choice wins
    monkeypatch.delenv("RAY_AUTH_MODE")
    (home / ".ray" / "auth_token").unlink()
    RayTokenAuth().on_multirun_start(ray_cfg)
    assert "RAY_AUTH_MODE" not in os.environ  # no token: Ray's own default
