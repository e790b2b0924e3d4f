"""The W&B sink against the real wandb (offline mode: no network, no mocks).

What is checked is what was *recorded*: the ``run-*.wandb`` transaction logs are read back with
wandb's own protobuf schema (``experiments.integrations.wandb_reader.read_offline_run``) and compared with the
job's ``metrics.csv`` / ``summary.json``, the runner's source of truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.analysis.compare.cli import compare_runs
from experiments.integrations.wandb_reader import (
    api_key_configured,
    find_offline_run_files,
    iter_wandb_records,
    read_offline_run,
)
from experiments.integrations.wandb_sink import WandbSink, mask_secrets, resolve_mode
from experiments.run.rundir import RunDir, read_metrics_csv
from experiments.run.sinks import RunContext

REPO = Path(__file__).resolve().parents[2]
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No credentials, no network, W&B's own config/cache dirs inside tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
        WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"),
        WANDB_DATA_DIR=str(tmp_path / "wandb-data"),
        NETRC=str(tmp_path / "no-netrc"),
        OMP_NUM_THREADS="1",
        **extra,
    )
    return env


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """In-process tests: the same clean environment."""
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    for key, value in _clean_env(tmp_path).items():
        if key.startswith("WANDB_") or key == "NETRC":
            monkeypatch.setenv(key, value)
    return tmp_path


def _history_steps(run) -> list[int]:
    return [int(row["_step"]) for row in run.history]


# ---------------------------------------------------------------------------------------- e2e
def test_multirun_jobs_each_get_their_own_offline_run_with_the_csv_metrics(tmp_path):
    """Two Hydra jobs in ONE process (the basic launcher, like a reused joblib/Ray worker): each
    job has its own W&B run whose history holds exactly its own metrics.csv rows at the same steps."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "experiments.train",
        "-m",
        "agent=random",
        "seed=0,1",
        "protocol=tiny",
        "logger=wandb",
        "logger.sinks.wandb.mode=offline",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    histories = []
    for seed, job in enumerate(sorted(p for p in sweep.iterdir() if p.is_dir())):
        files = find_offline_run_files(job / "wandb")
        assert len(files) == 1, f"{job}: expected one offline W&B run, found {files}"
        run = read_offline_run(files[0])
        summary = json.loads((job / "summary.json").read_text())
        csv_rows = read_metrics_csv(job / "metrics.csv")
        assert csv_rows, "the CSV sink wrote nothing"

        # identity: one run per job, the runner's stable id, its config, grouped by the sweep
        assert run.run_id == RunDir(job).run_id
        assert run.config["seed"] == seed
        assert run.config["choices"]["agent"] == "random"
        assert run.config["optimize"] == {"metric": "online/reward", "goal": "maximize"}
        assert run.job_type == "random"
        assert run.group == f"{sweep.parent.name}_{sweep.name}"  # the sweep dir's last 2 parts
        assert {"env:drifting", "agent:random"} <= set(run.tags)
        assert run.exit_code == 0

        # the same keys, values and step axis as metrics.csv (several writes per step merged)
        assert sorted(run.metric_rows()) == sorted(csv_rows)
        assert _history_steps(run) == sorted({step for step, _, _ in csv_rows})
        assert {"online/reward", "online/regret", "eval/return"} <= {k for _, k, _ in csv_rows}

        # the summary is summary.json's (not the last history row's values)
        assert run.summary["online/reward"] == pytest.approx(summary["online/reward"], rel=1e-12)
        assert run.summary["status"] == "completed"
        histories.append(sorted(run.metric_rows()))
    assert histories[0] != histories[1], "both jobs logged the same data: they share a run"

    # recsim-compare reads the offline W&B runs too, with the same numbers as the local files
    from_wandb = compare_runs(
        [], tmp_path / "cmp-wandb", wandb_paths=[sweep], reps=500, plots=False
    )
    from_local = compare_runs([sweep], tmp_path / "cmp-local", reps=500, plots=False)
    assert from_wandb["counts"] == from_local["counts"] == {"completed": 2}
    for metric in ("online/reward", "eval/return"):
        ours = from_wandb["groups"]["random"]["metrics"][metric]
        assert sorted(ours["values"]) == sorted(
            from_local["groups"]["random"]["metrics"][metric]["values"]
        )


# ---------------------------------------------------------------------------------------- in process
def test_failed_run_is_finished_as_failed(wandb_env):
    ctx = RunContext(run_dir=wandb_env / "run", config={"seed": 3}, run_id="failrun1", name="f")
    sink = WandbSink(ctx, mode="offline")
    with pytest.raises(ValueError, match="boom"):
        try:
            sink.write(0, {"online/reward": 0.5})
            sink.write(64, {"online/reward": 0.25})
            raise ValueError("boom")
        finally:
            sink.close()  # as the runner does: in `finally`
    run = read_offline_run(wandb_env / "run" / "wandb")
    assert run.exit_code == 1
    assert run.summary["status"] == "failed"
    assert "boom" in run.summary["error"]
    assert sorted(run.metric_rows()) == [(0, "online/reward", 0.5), (64, "online/reward", 0.25)]
    sink.close()  # a second close is a no-op


def test_resumed_run_keeps_the_run_id_and_the_user_step_axis(wandb_env):
    """Offline, a resume is a second offline-run dir with the same id (``wandb sync`` uploads both
    in order); steps are user-steps in both, and steps already logged are not logged again."""
    run_dir = wandb_env / "run"
    first = WandbSink(
        RunContext(run_dir=run_dir, config={"seed": 0}, run_id="resume01"), mode="offline"
    )
    for step in (64, 128, 192):
        first.write(step, {"online/reward": step / 1000})
    first.close()
    second = WandbSink(
        RunContext(run_dir=run_dir, config={"seed": 0}, run_id="resume01", resumed=True),
        mode="offline",
    )
    for step in (128, 192, 256):
        second.write(step, {"online/reward": step / 1000})
    second.write(192, {"online/reward": -1.0})  # behind the last logged step: W&B could not take it
    second.close()
    runs = [read_offline_run(f) for f in find_offline_run_files(run_dir / "wandb")]
    assert [r.run_id for r in runs] == ["resume01", "resume01"]
    assert [_history_steps(r) for r in runs] == [[64, 128, 192], [128, 192, 256]]
    assert all(v >= 0 for r in runs for _, _, v in r.metric_rows())


def test_disabled_mode_writes_nothing(wandb_env):
    sink = WandbSink(RunContext(run_dir=wandb_env / "run", run_id="x"), mode="disabled")
    sink.write(0, {"a": 1.0})
    sink.write_summary({"a": 1.0})
    sink.close()
    assert sink.run is None
    assert not (wandb_env / "run" / "wandb").exists()


def test_mode_is_online_only_with_credentials(wandb_env, monkeypatch):
    assert not api_key_configured()
    assert resolve_mode("auto") == "offline"
    assert resolve_mode("online") == "offline"  # no key: no hang, log offline
    assert resolve_mode("disabled") == "disabled"
    assert resolve_mode(None) == "offline"
    with pytest.raises(ValueError, match="mode"):
        resolve_mode("sometimes")
    netrc = wandb_env / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert api_key_configured()
    assert resolve_mode("auto") == "online"
    assert resolve_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")  # a key for another host
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert resolve_mode("auto") == "online"


def test_api_key_is_never_written(tmp_path):
    """With a key in the environment (and, by mistake, in the config), nothing under the run dir
    contains it. Offline mode: a fake key never reaches a server."""
    script = (
        "import sys\n"
        "from experiments.run.sinks import RunContext\n"
        "from experiments.integrations.wandb_sink import WandbSink\n"
        "ctx = RunContext(run_dir=sys.argv[1], run_id='keytest', name='k',\n"
        f"    config={{'seed': 0, 'local': {{'wandb_api_key': '{FAKE_KEY}', 'token': '{FAKE_KEY}'}}}})\n"
        "sink = WandbSink(ctx, mode='offline')\n"
        "sink.write(0, {'online/reward': 1.0})\n"
        "sink.write_summary({'online/reward': 1.0})\n"
        "sink.close()\n"
    )
    run_dir = tmp_path / "run"
    env = _clean_env(tmp_path, WANDB_API_KEY=FAKE_KEY)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(run_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert FAKE_KEY not in proc.stdout + proc.stderr
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    leaks = [p for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert not leaks, f"API key written to {leaks}"
    assert read_offline_run(run_dir / "wandb").config["local"]["wandb_api_key"] == "***"


def test_mask_secrets_keeps_everything_else():
    cfg = {"agent": {"lr": 0.1, "api_key": "k"}, "token": None, "tags": [{"password": "p"}]}
    assert mask_secrets(cfg) == {
        "agent": {"lr": 0.1, "api_key": "***"},
        "token": None,
        "tags": [{"password": "***"}],
    }


def test_reader_stops_at_a_torn_tail(wandb_env):
    sink = WandbSink(RunContext(run_dir=wandb_env / "run", run_id="torn0001"), mode="offline")
    for step in range(0, 6400, 64):
        sink.write(step, {"online/reward": step / 100})
    sink.close()
    path = find_offline_run_files(wandb_env / "run" / "wandb")[0]
    full = list(iter_wandb_records(path))
    torn = wandb_env / "torn.wandb"
    torn.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    part = list(iter_wandb_records(torn))
    assert 0 < len(part) < len(full)
    assert [r.SerializeToString() for r in part] == [
        r.SerializeToString() for r in full[: len(part)]
    ]
    bad = bytearray(path.read_bytes())
    bad[200] ^= 0xFF
    torn.write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="checksum"):
        list(iter_wandb_records(torn))


# ---------------------------------------------------------------------------------------- issue 19
def test_online_without_a_network_falls_back_offline_and_keeps_the_record(wandb_env, monkeypatch):
    """A key but no reachable server: the run is logged offline under its own id (not "run ID
    ... is in use"), and the offline record holds every row."""
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    run_dir = wandb_env / "run"
    sink = WandbSink(
        RunContext(run_dir=run_dir, config={"seed": 0}, run_id="nonet01"),
        mode="online",
        init_timeout=5,
    )
    assert sink.mode == "offline" and sink.run is not None
    for step in (64, 128):
        sink.write(step, {"online/reward": step / 1000})
    sink.write_summary({"online/reward": 0.1})
    sink.close()
    files = [f for f in find_offline_run_files(run_dir / "wandb") if "offline-run" in str(f)]
    (run,) = [read_offline_run(f) for f in files]  # (the online attempt left its own empty dir)
    assert run.run_id == "nonet01"
    assert _history_steps(run) == [64, 128] and run.summary["online/reward"] == 0.1


def test_wandb_mode_auto_in_the_environment_is_accepted(wandb_env, monkeypatch):
    """W&B itself rejects WANDB_MODE=auto ("Input should be 'online', 'offline', ..."); ours maps
    it to the resolved mode while W&B reads it, and leaves the variable as it was."""
    monkeypatch.setenv("WANDB_MODE", "auto")
    sink = WandbSink(RunContext(run_dir=wandb_env / "run", run_id="auto01"), mode="auto")
    assert sink.mode == "offline" and sink.run is not None
    sink.write(0, {"a": 1.0})
    sink.close()
    assert os.environ["WANDB_MODE"] == "auto"
    (run,) = [read_offline_run(f) for f in find_offline_run_files(wandb_env / "run" / "wandb")]
    assert run.run_id == "auto01"
