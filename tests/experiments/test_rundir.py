"""The run dir (its record, statuses, atomic writes, checkpoints) and the pickle-free state format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.run.rundir import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    MISSING,
    PRUNED,
    RUNNING,
    JobRecord,
    RunDir,
    same_job,
)


def test_statuses_as_writers_record_them_and_readers_see_them(run_dir):
    rd = RunDir(run_dir)
    assert rd.state().status == MISSING and not RunDir.is_run_dir(run_dir)
    rd.create()
    rd.write_summary({"status": RUNNING, "online/reward": 0.5, "x": np.float32(0.25)})
    assert RunDir.is_run_dir(run_dir)
    state = rd.state()
    assert state.status == RUNNING and "resume" in state.error and state.summary["x"] == 0.25
    try:
        raise RuntimeError("simulated crash")
    except RuntimeError as exc:
        rd.record_failure(exc)
    state = rd.state()
    assert state.status == FAILED and state.error == "RuntimeError: simulated crash"
    assert state.summary["online/reward"] == 0.5  # partial metrics kept
    assert "Traceback" in rd.error_path.read_text()
    rd.set_status(PRUNED, pruned_at_step=64)
    state = rd.state()
    assert state.status == PRUNED and state.error is None and not rd.error_path.exists()
    rd.set_status(INTERRUPTED)
    assert "resume it" in rd.state().error
    rd.set_status(COMPLETED)
    assert rd.state() == rd.state() and rd.state().error is None
    with pytest.raises(ValueError, match="status='done'"):
        rd.set_status("done")
    rd.summary_path.write_text("{torn")
    assert rd.state().status == FAILED and "unreadable" in rd.state().error
    assert not list(run_dir.glob(".*.tmp"))  # every write was renamed into place


def test_the_record_keeps_its_id_and_old_dirs_read_from_hydra(run_dir):
    rd = RunDir(run_dir).create()
    assert rd.run_id == ""
    run_id = RunDir.new_run_id()
    rd.write_job(JobRecord(run_id, "a", choices={"agent": "dqn"}, overrides=["agent=dqn"]))
    assert len(run_id) == 12 and RunDir(run_dir).run_id == run_id
    assert json.loads((run_dir / RunDir.RECORD).read_text())["run_id"] == run_id
    old = RunDir(run_dir.parent / "old").create()
    (old.path / ".hydra").mkdir()
    (old.path / ".hydra" / "overrides.yaml").write_text("- seed=3\n")
    (old.path / ".run_id").write_text("0123abcd\n")
    assert old.job().overrides == ["seed=3"] and old.run_id == "0123abcd"


def test_checkpoints_appear_whole_and_the_newest_are_kept(run_dir):
    rd = RunDir(run_dir).create()
    for step in (10, 20, 30):
        with rd.new_checkpoint(step) as ckpt:
            (ckpt.path / "x").write_text(str(step))
    with pytest.raises(RuntimeError), rd.new_checkpoint(40) as ckpt:
        (ckpt.path / "x").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [c.step for c in rd.checkpoints()] == [10, 20, 30]  # no trace of step 40
    assert not list(rd.checkpoint_dir.glob(".tmp-*"))
    rd.prune_checkpoints(keep=1)
    assert [c.step for c in rd.checkpoints()] == [30] and rd.latest_checkpoint().step == 30


def test_one_writer_per_run_dir(run_dir):
    """Nested locks of one process share the lock (the Hydra callback, then the runner); another
    process is refused, naming the dir and the holder's pid; a dead holder's lock is free."""
    import os
    import subprocess
    import sys

    rd = RunDir(run_dir)
    assert rd.lock_holder() is None
    with rd.lock(), RunDir(run_dir).lock():
        assert rd.lock_holder() == os.getpid()
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from experiments.run.rundir import RunDir\n"
                "try:\n    RunDir(sys.argv[1]).acquire_lock()\n"
                "except Exception as e:\n    print(type(e).__name__, e)",
                str(run_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.stdout.startswith("RunDirLocked"), probe.stdout + probe.stderr
        assert str(run_dir) in probe.stdout and f"pid {os.getpid()}" in probe.stdout
    assert rd.lock_holder() is None  # released when the outer holder is done
    (run_dir / RunDir.LOCK).write_text("999999999\n")  # a stale pid of a dead process
    with RunDir(run_dir).lock():
        assert (run_dir / RunDir.LOCK).read_text().strip() == str(os.getpid())


def test_sweep_job_identity_ignores_resume_and_hydra_keys():
    assert same_job(["agent=dqn", "seed=1"], ["seed=1", "agent=dqn", "resume=true"])
    assert same_job(["a=1"], ["a=1", "hydra.run.dir=x"])
    assert not same_job(["agent=dqn", "seed=1"], ["agent=dqn", "seed=2"])
