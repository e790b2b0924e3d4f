"""Faults and misuse of the runner that must end cleanly (issue 14): two writers of one run dir,
``resume=`` of something that is not a run, damaged checkpoints, a full disk, shrinking a finished
run, a sweep job killed by a signal, unknown nested keys, and secrets on the command line.

Real processes where the fault is about processes (the console script, Hydra's joblib launcher,
signals); in-process runs through the compose API otherwise. Every run is tiny.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from agents.baselines import RandomAgent
from experiments.run import console, files
from experiments.run.cli import route_resume_argv
from experiments.run.config import ConfigError
from experiments.run.job import run
from experiments.run.rundir import NotARunDir, RunDir, RunDirError
from experiments.run.secrets import hide_secret_overrides, is_secret_key, redact_overrides
from experiments.run.sinks import CsvSink, RunContext
from experiments.run.trust import UntrustedTarget
from recsim_env.state_io import load_tree

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RECSIM_TRAIN = Path(sys.executable).parent / "recsim-train"


@pytest.fixture
def env(subprocess_env) -> dict[str, str]:
    """The console script's environment, with this module importable (its test agents/sinks)."""
    return dict(
        subprocess_env, PYTHONPATH=os.pathsep.join([str(HERE), subprocess_env["PYTHONPATH"]])
    )


def recsim_train(args: list[str], env: dict[str, str], timeout: float = 300):
    return subprocess.run(
        [str(RECSIM_TRAIN), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(RECSIM_TRAIN), *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env
        )


def wait_until(condition, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the first process ended (rc={proc.returncode}) before {what}")
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def holds_lock(run_dir: Path, pid: int) -> bool:
    lock = run_dir / RunDir.LOCK
    return lock.exists() and lock.read_text().strip() == str(pid)


def unique_rows(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "metrics.csv")
    assert not frame.duplicated(["step", "key"]).any(), "duplicated step ranges"
    return frame


# ---------------------------------------------------------------------------------------- 1. two writers
LONG = [
    "agent=random",
    "protocol=tiny",
    "protocol.total_steps=60000",
    "protocol.log_every=1000",
    "protocol.eval_every=0",
    "protocol.checkpoint_every=0",
    "logger.sinks.csv.flush_every_s=0",
    "progress=false",
]


def test_a_second_fresh_run_into_a_live_run_dir_is_refused(tmp_path, env):
    """Two runs with different seeds into one hydra.run.dir: the second exits 2 naming the dir and
    the holder's pid, before Hydra writes anything; the first's files are untouched."""
    run_dir = tmp_path / "run"
    first = start([*LONG, "seed=0", f"hydra.run.dir={run_dir}"], env, tmp_path / "first.log")
    try:
        wait_until(
            lambda: (
                (run_dir / "metrics.csv").exists()
                and len((run_dir / "metrics.csv").read_bytes().splitlines()) > 2
            ),
            first,
            "its first metrics",
        )
        first.send_signal(signal.SIGSTOP)  # deterministic overlap: the holder is alive, frozen
        files = ["config.yaml", "metrics.csv", "run.json", "train.log", ".hydra/overrides.yaml"]
        before = {name: (run_dir / name).read_bytes() for name in files}
        second = recsim_train([*LONG, "seed=1", f"hydra.run.dir={run_dir}"], env)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"{run_dir} is being written by another process (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert {name: (run_dir / name).read_bytes() for name in files} == before
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
    assert "seed: 0" in (run_dir / "config.yaml").read_text()
    assert "seed=0" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert (run_dir / "metrics.csv").read_bytes().startswith(before["metrics.csv"])
    steps = unique_rows(run_dir).query("key == 'online/reward'").step.tolist()
    assert steps == sorted(steps) and len(steps) >= 59 and steps[-1] >= 60000  # one run's rows


def test_two_concurrent_resumes_of_one_run_never_duplicate_steps(tmp_path, env, tiny_cfg):
    run_dir = tmp_path / "run"
    reference = tmp_path / "reference"
    run(tiny_cfg("agent=linucb"), run_dir=run_dir, overrides=["agent=linucb"])
    run(tiny_cfg("agent=linucb", "protocol.total_steps=1280"), run_dir=reference)
    args = [f"resume={run_dir}", "protocol.total_steps=1280"]
    first = start(args, env, tmp_path / "first.log")
    try:
        wait_until(lambda: holds_lock(run_dir, first.pid), first, "it locked the run dir")
        first.send_signal(signal.SIGSTOP)
        second = recsim_train(args, env)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {first.pid}" in second.stderr and str(run_dir) in second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
    resumed, straight = unique_rows(run_dir), unique_rows(reference)
    deterministic = ~resumed.key.str.startswith("time/")
    pd.testing.assert_frame_equal(
        resumed[deterministic].reset_index(drop=True),
        straight[~straight.key.str.startswith("time/")].reset_index(drop=True),
    )


# ---------------------------------------------------------------------------------------- 2. resume=<not a run>
def _not_runs(tmp_path: Path, tiny_cfg) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    sweep = tmp_path / "sweep"
    RunDir(sweep / "0").create().write_summary({"status": "completed"})
    failed = RunDir(tmp_path / "failed").create()
    failed.config_path.write_text("seed: 0\n")
    failed.set_status("failed", error="ValueError: boom")
    return {
        "mistyped": (tmp_path / "outptus" / "12-00-00", "no such directory"),
        "empty": (tmp_path / "empty", "is an empty directory"),
        "file": (tmp_path / "a_file", "is a file, not a run directory"),
        "sweep": (sweep, "is a sweep dir (1 runs under it)"),
        "no checkpoint": (failed.path, "no checkpoint to continue from (failed: ValueError: boom)"),
    }


def test_resume_of_a_path_that_holds_no_run_says_what_it_is(tmp_path, tiny_cfg):
    for name, (path, message) in _not_runs(tmp_path, tiny_cfg).items():
        with pytest.raises(NotARunDir, match=message.replace("(", r"\(").replace(")", r"\)")):
            route_resume_argv(["recsim-train", f"resume={path}"])
        if path.is_dir():  # the runner refuses too (compose API): never a fresh run
            with pytest.raises(NotARunDir):
                run(tiny_cfg("agent=random", f"resume={path}"), run_dir=path)
            assert not (path / "metrics.csv").exists(), name


@pytest.mark.parametrize("case", ["mistyped", "file"])
def test_recsim_train_resume_of_no_run_exits_2_without_a_traceback(case, tmp_path, env, tiny_cfg):
    path, message = _not_runs(tmp_path, tiny_cfg)[case]
    result = recsim_train([f"resume={path}"], env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "FileExistsError" not in result.stderr
    assert not path.exists() if case == "mistyped" else path.read_text() == "x"


# ---------------------------------------------------------------------------------------- 3. damaged checkpoints
def _damage(path: Path) -> None:
    target = path if path.is_file() else max(p for p in path.rglob("*") if p.is_file())
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("part", ["state", "agent"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(part, tmp_path, tiny_cfg, caplog):
    run_dir, reference = tmp_path / "run", tmp_path / "reference"
    keep = ["agent=linucb", "protocol.keep_checkpoints=2"]
    run(tiny_cfg(*keep), run_dir=run_dir)
    run(tiny_cfg(*keep, "protocol.total_steps=1280"), run_dir=reference)
    first, latest = RunDir(run_dir).checkpoints()
    assert (first.step, latest.step) == (320, 640)
    _damage(latest.state if part == "state" else latest.agent)
    with caplog.at_level(logging.WARNING, logger="experiments.run"):
        run(
            tiny_cfg(*keep, "resume=true", "protocol.total_steps=1280"),
            run_dir=run_dir,
            overrides=["resume=true", "protocol.total_steps=1280"],
        )
    assert "checkpoint damaged" in caplog.text and "step_000000000640" in caplog.text
    assert "resumed from the older checkpoint step_000000000320" in caplog.text
    assert (run_dir / "checkpoints" / "damaged-step_000000000640").is_dir()  # kept, set aside
    # resumed from step 320, the run equals an uninterrupted one
    resumed, straight = unique_rows(run_dir), unique_rows(reference)
    pd.testing.assert_frame_equal(
        resumed[~resumed.key.str.startswith("time/")].reset_index(drop=True),
        straight[~straight.key.str.startswith("time/")].reset_index(drop=True),
    )


def test_no_intact_checkpoint_is_a_clear_error_that_leaves_the_run_alone(tmp_path, tiny_cfg):
    run(tiny_cfg("agent=linucb"), run_dir=tmp_path)  # keep_checkpoints=1: one checkpoint
    (only,) = RunDir(tmp_path).checkpoints()
    _damage(only.state)
    summary = (tmp_path / "summary.json").read_bytes()
    with pytest.raises(RunDirError, match=rf"no intact checkpoint to resume in {tmp_path}.*trunc"):
        run(tiny_cfg("agent=linucb", "resume=true", "protocol.total_steps=1280"), run_dir=tmp_path)
    assert (tmp_path / "summary.json").read_bytes() == summary  # still "completed"
    assert not (tmp_path / "error.txt").exists()


# ---------------------------------------------------------------------------------------- 4. full disk
class FullDisk:
    """A file that takes ``room`` more bytes (a last write cut short), then ``ENOSPC``."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.file.write(bytes(data)[: self.room])
        self.room -= written
        return written

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_failed_csv_write_leaves_whole_lines_and_a_torn_tail_is_dropped(tmp_path):
    sink = CsvSink(RunContext(run_dir=tmp_path), flush_every_s=0)
    sink.write(1, {"a": 1.0})
    good = (tmp_path / "metrics.csv").read_bytes()
    sink._file = FullDisk(sink._file, room=5)  # the next batch is cut after 5 bytes
    with pytest.raises(OSError, match="No space left"):
        sink.write(2, {"a": 2.0, "b": 3.0})
    assert (tmp_path / "metrics.csv").read_bytes() == good  # no partial line
    sink._file = sink._file.file
    sink.close()
    with open(tmp_path / "metrics.csv", "ab") as f:
        f.write(b"3,a,4.")  # a crash mid-line (no line-atomic writer)
    CsvSink(RunContext(run_dir=tmp_path, resumed=True)).close()
    assert (tmp_path / "metrics.csv").read_bytes() == good


def test_a_full_disk_ends_the_run_as_failed_with_its_error(tmp_path, tiny_cfg, monkeypatch):
    """ENOSPC while appending metrics, and no room for new files (the summary's and error.txt's
    temporaries): the run still ends `status: failed` with the error, written in place."""
    opened = RunDir.open_metrics

    def open_metrics(self, *, append):
        return FullDisk(opened(self, append=append), room=600)

    real_write = files._write_file

    def no_new_files(path, text):
        if Path(path).name.startswith(".") and disk["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, text)

    disk = {"full": False}
    monkeypatch.setattr(RunDir, "open_metrics", open_metrics)
    monkeypatch.setattr(files, "_write_file", no_new_files)
    original = RunDir.record_failure

    def record_failure(self, exc):
        disk["full"] = True  # from the failure on, nothing new fits
        original(self, exc)

    monkeypatch.setattr(RunDir, "record_failure", record_failure)
    with pytest.raises(OSError, match="No space left"):
        run(tiny_cfg("agent=random", "logger.sinks.csv.flush_every_s=0"), run_dir=tmp_path)
    state = RunDir(tmp_path).state()
    assert state.status == "failed" and "No space left on device" in state.error
    assert "OSError" in (tmp_path / "error.txt").read_text()
    text = (tmp_path / "metrics.csv").read_text()
    assert text.endswith("\n") and len(text) <= 600
    assert all(len(line.split(",")) == 3 for line in text.splitlines())
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------- 5. shrinking
def test_a_finished_run_cannot_be_shortened_and_its_config_stays(tmp_path, tiny_cfg):
    run(tiny_cfg("agent=random"), run_dir=tmp_path)
    files = {p: (tmp_path / p).read_bytes() for p in ("config.yaml", "summary.json", "run.json")}
    with pytest.raises(
        RunDirError, match=r"total_steps=320 but .* already at step 640: a finished"
    ):
        run(
            tiny_cfg("agent=random", "resume=true", "protocol.total_steps=320"),
            run_dir=tmp_path,
            overrides=["resume=true", "protocol.total_steps=320"],
        )
    assert {p: (tmp_path / p).read_bytes() for p in files} == files
    assert not (tmp_path / "error.txt").exists()


# ---------------------------------------------------------------------------------------- 6. killed jobs
class SelfKillingAgent(RandomAgent):
    """Killed by SIGKILL (as by the out-of-memory killer) at its first step when seed == 1."""

    def __init__(self, env, seed=None, **kwargs):
        super().__init__(env, seed=seed, **kwargs)
        self.doomed = seed == 1

    def act(self, obs, *, explore=False, info=None):
        if self.doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(obs, explore=explore, info=info)


def joblib_sweep(agent_class: str, seeds: str, sweep_dir: Path, env: dict):
    """A tiny sweep over ``seeds`` of this module's ``agent_class`` on 2 joblib workers."""
    return recsim_train(
        [
            "-m",
            "agent=random",
            f"agent._target_=test_faults.{agent_class}",
            f"seed={seeds}",
            "protocol=tiny",
            f"hydra.sweep.dir={sweep_dir}",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        ],
        env,
    )


def test_a_sweep_job_killed_by_a_signal_fails_alone(tmp_path, env):
    sweep_dir = tmp_path / "sweep"
    result = joblib_sweep("SelfKillingAgent", "0,1,2", sweep_dir, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    states = {job: RunDir(sweep_dir / job).state() for job in ("0", "1", "2")}
    assert {job: s.status for job, s in states.items()} == {
        "0": "completed",
        "1": "failed",
        "2": "completed",
    }
    assert "killed by signal SIGKILL" in states["1"].error
    assert "killed by signal SIGKILL" in (sweep_dir / "1" / "error.txt").read_text()
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert [f["dir"] for f in failures] == [str(sweep_dir / "1")]
    assert "seed=1" in failures[0]["overrides"] and "1 failed" in output


def test_sigterm_to_a_sweep_reaches_its_forked_job_which_checkpoints(tmp_path, env):
    """The launcher's process passes SIGTERM on to the job it waits for (a forked child); the
    sweep then stops (exit 130, as an interrupted run) instead of starting its next job."""
    sweep_dir = tmp_path / "sweep"
    job = sweep_dir / "0"
    sweep = start(["-m", *LONG, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], env, tmp_path / "log")
    wait_until(
        lambda: (
            (job / "metrics.csv").exists()
            and len((job / "metrics.csv").read_bytes().splitlines()) > 2
        ),
        sweep,
        "the job's first metrics",
    )
    assert RunDir(job).lock_holder() not in (None, sweep.pid)  # the job runs in a child
    sweep.send_signal(signal.SIGTERM)  # to the sweep's process only
    assert sweep.wait(timeout=120) == 130, (tmp_path / "log").read_text()
    state = RunDir(job).state()
    assert state.status == "interrupted" and state.summary["num_timesteps"] < 60000
    assert RunDir(job).latest_checkpoint().step == state.summary["num_timesteps"]
    assert not (sweep_dir / "1" / "run.json").exists()  # the next job was not started
    log = (tmp_path / "log").read_text()
    assert "resume=true" in log and "Traceback" not in log


def test_a_job_left_running_by_a_dead_process_is_reported_killed(tmp_path):
    from experiments.integrations.hydra_callbacks import scan_sweep

    rd = RunDir(tmp_path / "0")
    with rd.lock():
        rd.write_summary({"status": "running"})
        assert scan_sweep(tmp_path)[0]["status"] == "running"  # alive: still running
    (job,) = scan_sweep(tmp_path)  # the lock is gone with its holder
    assert job["status"] == "killed" and "killed" in job["error"]


# ---------------------------------------------------------------------------------------- signals, Ctrl-C
class _Stoppable:
    stop_requested = None


def test_the_same_signal_delivered_twice_stops_once(monkeypatch):
    protocol = _Stoppable()
    monkeypatch.setattr(console, "DUPLICATE_SIGNAL_S", 3600.0)
    with console.stop_on_signals(protocol):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # a duplicate (group + forwarding parent): ignored
    assert protocol.stop_requested == "SIGINT"
    monkeypatch.setattr(console, "DUPLICATE_SIGNAL_S", 0.0)
    # "as usual" is whatever handler was installed before: make it Python's own Ctrl-C here (an
    # earlier test in the same pytest-xdist worker has left another one installed: seen twice)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), console.stop_on_signals(_Stoppable()):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # a real second Ctrl-C: stop at once
    finally:
        signal.signal(signal.SIGINT, before)


class InterruptedAgent(RandomAgent):
    def learn(self, total_timesteps, callback=None):
        raise KeyboardInterrupt


def test_a_hard_interrupt_is_recorded_as_interrupted(tmp_path, tiny_cfg):
    with pytest.raises(KeyboardInterrupt):
        run(tiny_cfg("agent=random", f"agent._target_={__name__}.InterruptedAgent"), tmp_path)
    state = RunDir(tmp_path).state()
    assert state.status == "interrupted" and "KeyboardInterrupt" in state.summary["interrupted"]


# ---------------------------------------------------------------------------------------- 7. keys, secrets
def test_an_unknown_sb3_kwargs_key_names_its_real_path_and_what_it_takes(tmp_path, tiny_cfg):
    with pytest.raises(ConfigError) as info:
        run(tiny_cfg("agent=sb3_dqn", "+agent.sb3_kwargs.optimize_memory=1"), run_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("unknown config key agent.sb3_kwargs.optimize_memory:")
    assert "stable_baselines3.DQN takes no argument 'optimize_memory'" in message
    assert "did you mean agent.sb3_kwargs.optimize_memory_usage?" in message
    assert "'replay_buffer_kwargs'" in message  # what sb3_kwargs takes


def test_resume_validates_overrides_against_the_runs_own_agent(tmp_path, env, tiny_cfg):
    run_dir = tmp_path / "run"
    run(
        tiny_cfg("agent=linucb"),
        run_dir=run_dir,
        overrides=["agent=linucb"],
        choices={"agent": "linucb", "env": "drifting", "protocol": "tiny", "logger": "csv"},
    )
    assert "agent=linucb" in route_resume_argv(["recsim-train", f"resume={run_dir}"])
    ok = recsim_train([f"resume={run_dir}", "agent.alpha=5"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ignoring overrides ['agent.alpha=5']" in ok.stdout + ok.stderr
    bad = recsim_train([f"resume={run_dir}", "agent.alpah=5"], env)
    assert bad.returncode == 2 and "did you mean 'agent.alpha'" in bad.stderr, bad.stderr


def test_secret_keys_and_their_overrides():
    assert is_secret_key("+hydra.job.env_set.WANDB_API_KEY") and is_secret_key("a.token")
    assert is_secret_key("db_password") and is_secret_key("key")
    assert not is_secret_key("protocol.keep_checkpoints")
    assert not is_secret_key("hydra.job.config.override_dirname.exclude_keys")
    assert redact_overrides(["seed=1", "+x.api_key=abc"]) == ["seed=1", "+x.api_key=***"]
    environ: dict[str, str] = {}
    argv = hide_secret_overrides(
        ["prog", "-m", "+hydra.job.env_set.HF_TOKEN=t0k", "+a.secret=s3", "seed=1"], environ
    )
    assert argv == [
        "prog",
        "-m",
        "+hydra.job.env_set.HF_TOKEN=${oc.env:HF_TOKEN}",
        "+a.secret=${oc.env:RECSIM_SECRET_A_SECRET}",
        "seed=1",
    ]
    assert environ == {"HF_TOKEN": "t0k", "RECSIM_SECRET_A_SECRET": "s3"}


class ProbeSink:
    """Writes whether the secrets reached the job (never the secrets themselves)."""

    def __init__(self, context, token=None):
        (context.run_dir / "probe.json").write_text(
            json.dumps(
                {
                    "token": token == "tok-ABC123",
                    "env": os.environ.get("WANDB_API_KEY") == "sekret-XYZ789",
                }
            )
        )

    def write(self, step, metrics):
        pass

    def write_summary(self, summary):
        pass

    def close(self):
        pass


def test_secrets_on_the_command_line_reach_the_job_but_no_file(tmp_path, env):
    run_dir = tmp_path / "run"
    result = recsim_train(
        [
            "agent=random",
            "protocol=tiny",
            "logger=wandb",
            "logger.sinks.wandb.mode=offline",
            "+hydra.job.env_set.WANDB_API_KEY=sekret-XYZ789",
            "+logger.sinks.probe._target_=test_faults.ProbeSink",
            "+logger.sinks.probe.token=tok-ABC123",
            f"hydra.run.dir={run_dir}",
        ],
        dict(env, WANDB_MODE="offline"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((run_dir / "probe.json").read_text()) == {"token": True, "env": True}
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any("wandb" in p.parts for p in files)  # W&B's run files are among those searched
    for path in files:
        data = path.read_bytes()
        assert b"sekret-XYZ789" not in data and b"tok-ABC123" not in data, path
    assert "token: '***'" in (run_dir / "config.yaml").read_text()
    assert "+logger.sinks.probe.token=***" in RunDir(run_dir).job().overrides


def test_a_sweep_job_whose_dir_another_process_holds_is_reported_not_written(tmp_path, env):
    """Two multiruns into one sweep dir: a job whose dir the other holds fails without writing
    there, and the failure report and failures.json list it (from <sweep>/.rejected/)."""
    sweep_dir = tmp_path / "sweep"
    held = RunDir(sweep_dir / "0").create()
    (held.path / "marker").write_text("the other sweep's job\n")
    with held.lock():  # this process plays the other sweep's job 0
        result = recsim_train(
            ["-m", "agent=random", "seed=0,1", "protocol=tiny", f"hydra.sweep.dir={sweep_dir}"],
            env,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # none of the run's files: Hydra itself writes .hydra/ and train.log into a multirun job's
    # dir before any callback or runner code of that job runs (documented in docs/experiments.md)
    written = {p.name for p in held.path.iterdir()} - {".lock", "marker", ".hydra", "train.log"}
    assert written == set(), written
    assert (held.path / "marker").read_text() == "the other sweep's job\n"
    assert RunDir(sweep_dir / "1").state().status == "completed"
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert [f["dir"] for f in failures] == [str(sweep_dir / "0")]
    assert "seed=0" in failures[0]["overrides"]
    assert "RunDirLocked" in failures[0]["error"] and f"pid {os.getpid()}" in failures[0]["error"]
    assert "1 failed" in output

    # a rejection of a job that has completed since (here: seed=1) is no failure any more
    from omegaconf import OmegaConf

    from experiments.integrations.hydra_callbacks import FailureReport
    from experiments.run.rejected import record_rejected

    done = RunDir(sweep_dir / "1").job().overrides
    record_rejected(sweep_dir, sweep_dir / "1", done, RunDirError("held earlier"), 1)
    FailureReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}}))
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert [f["dir"] for f in failures] == [str(sweep_dir / "0")]


# ---------------------------------------------------------------------------------------- issue 19
class WorkerKillingAgent(RandomAgent):
    """Kills its joblib *worker* process (the parent of the forked job) and then itself, at its
    first step, when seed == 0."""

    def act(self, obs, *, explore=False, info=None):
        if self.seed == 0:
            os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(obs, explore=explore, info=info)


def test_a_killed_joblib_worker_fails_its_job_and_the_sweep_goes_on(tmp_path, env):
    sweep_dir = tmp_path / "sweep"
    result = joblib_sweep("WorkerKillingAgent", "0,1,2,3", sweep_dir, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "TerminatedWorkerError" not in result.stderr.split("a joblib worker process died")[-1]
    states = {job: RunDir(sweep_dir / job).state() for job in ("0", "1", "2", "3")}
    assert states["0"].status == "failed" and "worker process was killed" in states["0"].error
    assert states["2"].status == states["3"].status == "completed", output  # started afterwards
    assert states["1"].status in ("completed", "failed")  # beside it: loky may end it too
    failures = json.loads((sweep_dir / "failures.json").read_text())
    assert str(sweep_dir / "0") in [f["dir"] for f in failures]
    assert "seed=0" in failures[0]["overrides"]


def _foreign_checkpoint(tmp_path: Path, tiny_cfg, run_dir: Path, keep_run_id: bool) -> None:
    """Copy the newest checkpoint of another run (num_envs=4, more steps) into ``run_dir``."""
    from experiments.run.checkpoint import write_manifest
    from recsim_env.state_io import load_tree, save_tree

    other = tmp_path / "other"
    run(tiny_cfg("agent=linucb", "env.num_envs=4", "protocol.total_steps=1280"), run_dir=other)
    ckpt = RunDir(other).latest_checkpoint()
    target = run_dir / "checkpoints" / ckpt.path.name
    shutil.copytree(ckpt.path, target)
    if not keep_run_id:  # as written before checkpoints named their run: only the env tells
        from experiments.run.rundir import Checkpoint

        copied = Checkpoint(target)
        state = load_tree(copied.state)
        del state["run_id"]
        save_tree(copied.state, state)
        write_manifest(copied)


@pytest.mark.parametrize("keep_run_id", [True, False], ids=["run_id", "env_only"])
def test_another_runs_newest_checkpoint_falls_back_to_this_runs(
    keep_run_id, tmp_path, tiny_cfg, caplog
):
    run_dir, reference = tmp_path / "run", tmp_path / "reference"
    run(tiny_cfg("agent=linucb"), run_dir=run_dir)
    run(tiny_cfg("agent=linucb", "protocol.total_steps=1920"), run_dir=reference)
    _foreign_checkpoint(tmp_path, tiny_cfg, run_dir, keep_run_id)
    assert RunDir(run_dir).latest_checkpoint().step == 1280  # the foreign one is the newest
    summary = (run_dir / "summary.json").read_bytes()
    with pytest.raises(RunDirError, match="already at step 1280"):  # checked before loading
        run(
            tiny_cfg("agent=linucb", "resume=true", "protocol.total_steps=960"),
            run_dir=run_dir,
            overrides=["resume=true", "protocol.total_steps=960"],
        )
    assert (run_dir / "summary.json").read_bytes() == summary  # still "completed"
    with caplog.at_level(logging.WARNING, logger="experiments.run"):
        run(
            tiny_cfg("agent=linucb", "resume=true", "protocol.total_steps=1920"),
            run_dir=run_dir,
            overrides=["resume=true", "protocol.total_steps=1920"],
        )
    assert "skipped (left as it is)" in caplog.text
    assert "resumed from the older checkpoint step_000000000640" in caplog.text
    assert "belongs to another run" in caplog.text or "does not fit this run" in caplog.text
    assert not list((run_dir / "checkpoints").glob("damaged*"))
    resumed, straight = unique_rows(run_dir), unique_rows(reference)
    pd.testing.assert_frame_equal(
        resumed[~resumed.key.str.startswith("time/")].reset_index(drop=True),
        straight[~straight.key.str.startswith("time/")].reset_index(drop=True),
    )


@pytest.mark.parametrize(
    ("agent", "wrong", "error"),
    [
        ("random", "PopularityAgent", r"was written by the agent .*RandomAgent.* fix the config"),
        ("linucb", "RandomAgent", r"cannot resume .*config.yaml: unknown config key agent\."),
    ],
)
def test_a_wrong_agent_in_config_yaml_never_renames_a_healthy_checkpoint(
    agent, wrong, error, tmp_path, tiny_cfg
):
    run(tiny_cfg(f"agent={agent}"), run_dir=tmp_path)
    config = tmp_path / "config.yaml"
    good = config.read_text()
    (only,) = RunDir(tmp_path).checkpoints()
    right = "RandomAgent" if agent == "random" else "LinUCB"
    config.write_text(good.replace(f"agents.baselines.{right}", f"agents.baselines.{wrong}"))
    assert config.read_text() != good
    summary = (tmp_path / "summary.json").read_bytes()
    args = ["resume=true", "protocol.total_steps=1280"]
    with pytest.raises(RunDirError, match=error):
        run(tiny_cfg(f"agent={agent}", *args), run_dir=tmp_path, overrides=args)
    assert only.path.is_dir() and not list((tmp_path / "checkpoints").glob("damaged*"))
    assert (tmp_path / "summary.json").read_bytes() == summary
    config.write_text(good)  # fixed: the run resumes from the same checkpoint
    run(tiny_cfg(f"agent={agent}", *args), run_dir=tmp_path, overrides=args)
    assert RunDir(tmp_path).state().summary["num_timesteps"] == 1280


def test_an_unknown_sink_is_an_error_before_the_run_starts(tmp_path, tiny_cfg):
    with pytest.raises(ConfigError, match=r"logger.sinks.csv._target_='no.such.Sink'.*import"):
        run(tiny_cfg("agent=random", "logger.sinks.csv._target_=no.such.Sink"), run_dir=tmp_path)
    assert not (tmp_path / "metrics.csv").exists() and not RunDir(tmp_path).checkpoints()
    assert "no.such.Sink" in RunDir(tmp_path).state().error


def test_resuming_a_finished_run_keeps_its_wall_time(tmp_path, tiny_cfg):
    run(tiny_cfg("agent=random"), run_dir=tmp_path)
    before = json.loads((tmp_path / "summary.json").read_text())
    run(tiny_cfg("agent=random", "resume=true"), run_dir=tmp_path, overrides=["resume=true"])
    after = json.loads((tmp_path / "summary.json").read_text())
    assert after["status"] == "completed" and after["wall_time_s"] == before["wall_time_s"]


def test_a_full_disk_while_a_dqn_checkpoint_is_written_says_so(tmp_path, tiny_cfg, monkeypatch):
    """torch reports a full disk as "[enforce fail at inline_container.cc:...] ... file write
    failed"; the run ends failed with a message that says what happened and what to do."""
    import torch

    def full_disk_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
            "data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", full_disk_save)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*(No space|full disk)"):
        run(tiny_cfg("agent=dqn", "agent.hidden_sizes=[8]"), run_dir=tmp_path)
    state = RunDir(tmp_path).state()
    assert state.status == "failed" and "resume=" in state.error, state.error
    assert not RunDir(tmp_path).checkpoints()  # no half-written checkpoint in place


@pytest.mark.parametrize(
    "name", ["with space", "comma,in,it", "k=v", "ünïcödé", "it's", "dollar$x"]
)
def test_resume_paths_with_any_characters(name, tmp_path, env, tiny_cfg):
    run_dir = tmp_path / name / "run"
    run(tiny_cfg("agent=random"), run_dir=run_dir)
    result = recsim_train([f"resume={run_dir}", "protocol.total_steps=960"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert RunDir(run_dir).state().summary["num_timesteps"] == 960
    assert not (tmp_path / "outputs").exists()


def test_resume_of_the_root_and_local_of_a_missing_option_are_clear_errors(env):
    from experiments.run.cli import check_local_option

    with pytest.raises(NotARunDir, match="resume=/ is the filesystem root"):
        route_resume_argv(["recsim-train", "resume=/"])
    with pytest.raises(ConfigError, match=r"a path without '\$\{'.*symlink"):
        route_resume_argv(["recsim-train", "resume=/tmp/a${x}"])
    with pytest.raises(ConfigError, match=r"invalid local='nonexistent' \(allowed: an option"):
        check_local_option(["local=nonexistent"])
    check_local_option(["local=example"])
    result = recsim_train(["local=nonexistent"], env, timeout=60)
    assert result.returncode == 2 and "invalid local='nonexistent'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("seed", [2**32, -1, "abc"])
def test_seeds_numpy_cannot_take_are_refused_up_front(seed, tmp_path, tiny_cfg):
    with pytest.raises(ConfigError, match=r"invalid seed="):
        run(tiny_cfg("agent=random", f"seed={seed}"), run_dir=tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


# ---------------------------------------------------------------------------------------- 9. parts
EXAMPLE = ROOT / "examples" / "protocol_part"
MY_PART = (
    f"hydra.searchpath=[file://{EXAMPLE / 'conf'}]",
    "protocol/parts=[default,popular_clicks]",
)


def _stop_at(step: int):
    """``on_eval`` that delivers SIGTERM at ``step``: the run checkpoints and stops there."""

    def on_eval(num_timesteps: int, summary) -> None:
        if num_timesteps == step:
            signal.raise_signal(signal.SIGTERM)

    return on_eval


def test_a_users_part_from_config_is_logged_checkpointed_and_continues_on_resume(
    tmp_path, tiny_cfg, monkeypatch
):
    """examples/protocol_part: a part of the user's own, added from a config dir outside the
    package, writes its metric and summary key; interrupted, its count is resumed, not restarted."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    args = ("agent=linucb", *MY_PART)
    reference = tmp_path / "reference"
    run(tiny_cfg(*args), run_dir=reference)
    run_dir = tmp_path / "run"
    with pytest.raises(Exception, match="interrupted by SIGTERM at step 320"):
        run(tiny_cfg(*args), run_dir=run_dir, overrides=list(args), on_eval=_stop_at(320))
    interrupted = RunDir(run_dir).state().summary
    assert interrupted["status"] == "interrupted" and interrupted["num_timesteps"] == 320
    assert interrupted["custom/popular_clicks"] > 0  # a restart from 0 would show below
    (ckpt,) = RunDir(run_dir).checkpoints()
    parts = load_tree(ckpt.state)["protocol"]["parts"]
    assert list(parts) == ["lifelong", "online", "recovery", "eval", "popular_clicks", "checkpoint"]
    assert parts["popular_clicks"]["popular_clicks"] == interrupted["custom/popular_clicks"]

    run(tiny_cfg(*args, "resume=true"), run_dir=run_dir, overrides=[*args, "resume=true"])
    resumed, straight = RunDir(run_dir).state().summary, RunDir(reference).state().summary
    assert resumed["status"] == "completed"
    assert resumed["custom/popular_clicks"] > interrupted["custom/popular_clicks"]
    for key in ("custom/popular_clicks", "custom/popular_click_share", "online/reward"):
        assert resumed[key] == straight[key], key
    logged = unique_rows(run_dir)
    mine = logged[logged.key == "custom/popular_clicks"]
    assert list(mine.step) == list(range(64, 641, 64)) and mine.value.is_monotonic_increasing
    expected = unique_rows(reference)
    assert list(mine.value) == list(expected[expected.key == "custom/popular_clicks"].value)


def test_a_part_the_run_dir_names_is_refused_unless_this_command_names_it(
    tmp_path, tiny_cfg, monkeypatch
):
    """The part's class is the user's (not in conf/): a resume that does not name it is refused
    before it is imported; the default parts (conf/protocol/parts/) need nothing."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    run(tiny_cfg("agent=random", *MY_PART), run_dir=tmp_path)
    with pytest.raises(UntrustedTarget, match=r"protocol\.parts\.popular_clicks\._target_="):
        run(tiny_cfg("agent=random", "resume=true"), run_dir=tmp_path, overrides=["resume=true"])
