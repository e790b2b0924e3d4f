"""``run_population``: each member's run dir is the separate run's (up to float reassociation),
a failing member fails alone, incompatible jobs are not stacked, an interrupted population resumes
exactly like the uninterrupted one.

Equivalence tolerance: the batched kernels sum in another order than a separate run's, so a
member's network drifts from the separate run's by float32 rounding (≈ 1e-7 relative per step);
on these tiny runs every action is the same and every metric agrees within ``ATOL``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.run.job import JobInfo, run
from experiments.run.population import PopulationJob, population_groups, run_population
from experiments.run.rundir import RunDir

ATOL = 1e-5  # metrics of a member vs its separate run (measured: ≤ 6e-8 on these runs)
MEMBERS = {
    "dqn": [
        ("seed=1", "agent.gamma=0.9", "agent.learning_starts=100"),
        ("seed=2", "agent.lr=3e-4", "agent.tau=1.0", "agent.learning_starts=100"),
        ("seed=3", "agent.exploration_fraction=0.5", "agent.learning_starts=200"),
    ],
    "pqn": [
        ("seed=1", "agent.gamma=0.9"),
        ("seed=2", "agent.lr=3e-4", "agent.td_lambda=0.3"),
        ("seed=3", "agent.exploration_fraction=0.5", "agent.max_grad_norm=null"),
    ],
}


def metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "metrics.csv")
    frame = frame[~frame.key.str.startswith("time/")].reset_index(drop=True)
    assert not frame.duplicated(["step", "key"]).any()
    return frame


def summary(run_dir: Path) -> dict:
    data = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith(("time/", "wall_time_s", "run_dir"))}


def assert_close_runs(a: Path, b: Path, atol: float = ATOL) -> None:
    ma, mb = metrics(a), metrics(b)
    assert list(ma.key) == list(mb.key) and list(ma.step) == list(mb.step)
    np.testing.assert_allclose(ma.value, mb.value, rtol=0, atol=atol)
    sa, sb = summary(a), summary(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        if isinstance(sa[key], float):
            assert math.isclose(sa[key], sb[key], abs_tol=atol) or (
                math.isnan(sa[key]) and math.isnan(sb[key])
            ), key
        else:
            assert sa[key] == sb[key], key


def jobs_of(tiny_cfg, root: Path, configs, *extra: str) -> list[PopulationJob]:
    return [
        PopulationJob(
            tiny_cfg(*c, *extra), JobInfo(output_dir=root / f"m{i}", overrides=[*c, *extra])
        )
        for i, c in enumerate(configs)
    ]


@pytest.mark.parametrize("agent", ["dqn", "pqn"])
def test_each_member_is_its_separate_run(agent, tmp_path, tiny_cfg):
    configs = [(f"agent={agent}", *c) for c in MEMBERS[agent]]
    separate = [run(tiny_cfg(*c), run_dir=tmp_path / f"s{i}") for i, c in enumerate(configs)]
    results = run_population(jobs_of(tiny_cfg, tmp_path, configs))

    assert results == pytest.approx(separate, abs=ATOL)
    for i in range(len(configs)):
        member, alone = tmp_path / f"m{i}", tmp_path / f"s{i}"
        assert_close_runs(member, alone)
        assert summary(member)["status"] == "completed"
        assert (member / "config.yaml").read_text() == (alone / "config.yaml").read_text()
        # the checkpoint holds this member's weights only (compact, not the stacked storage)
        (ckpt_m,), (ckpt_s,) = RunDir(member).checkpoints(), RunDir(alone).checkpoints()
        size_m = sum(f.stat().st_size for f in ckpt_m.path.iterdir())
        size_s = sum(f.stat().st_size for f in ckpt_s.path.iterdir())
        assert abs(size_m - size_s) < 1024, (size_m, size_s)


def test_a_member_with_an_invalid_hyperparameter_fails_alone(tmp_path, tiny_cfg):
    configs = [("agent=dqn", "seed=1"), ("agent=dqn", "seed=2", "agent.lr=-1"), ("agent=dqn",)]
    jobs = jobs_of(tiny_cfg, tmp_path, configs)
    assert population_groups(jobs) == [[0, 1, 2]]  # lr is continuous: one population
    results = run_population(jobs)

    assert isinstance(results[1], ValueError)
    assert "invalid DQNConfig.lr=-1" in str(results[1])
    bad = RunDir(tmp_path / "m1").state()
    assert bad.summary["status"] == "failed" and "invalid DQNConfig.lr=-1" in bad.error
    for i in (0, 2):
        assert isinstance(results[i], float) and math.isfinite(results[i])
        assert summary(tmp_path / f"m{i}")["status"] == "completed"
    alone = run(tiny_cfg(*configs[0]), run_dir=tmp_path / "alone")
    assert results[0] == pytest.approx(alone, abs=ATOL)


def test_a_multirun_member_that_fails_returns_nan_like_a_sweep_job(tmp_path, tiny_cfg):
    configs = [("agent=pqn", "seed=1"), ("agent=pqn", "seed=2", "agent.gamma=2")]
    jobs = [
        PopulationJob(
            tiny_cfg(*c),
            JobInfo(output_dir=tmp_path / f"m{i}", multirun=True),
            log_file=tmp_path / f"m{i}" / "train.log",
        )
        for i, c in enumerate(configs)
    ]
    ok, failed = run_population(jobs)
    assert isinstance(ok, float) and math.isfinite(ok)
    assert isinstance(failed, float) and math.isnan(failed)
    assert RunDir(tmp_path / "m1").state().summary["status"] == "failed"
    # each job's log holds its own records only
    assert "job failed" in (tmp_path / "m1" / "train.log").read_text()
    ok_log = tmp_path / "m0" / "train.log"
    assert not ok_log.exists() or "job failed" not in ok_log.read_text()


def test_incompatible_jobs_train_apart(tmp_path, tiny_cfg):
    configs = [
        ("agent=dqn", "seed=1"),
        ("agent=pqn", "seed=1"),
        ("agent=dqn", "seed=2", "agent.hidden_sizes=[32]"),  # another network shape
        ("agent=random", "seed=1"),  # not a population agent
        ("agent=dqn", "seed=3", "agent.gamma=0.5"),
        ("agent=dqn", "seed=4", "env.num_envs=8"),  # another env structure
    ]
    jobs = jobs_of(tiny_cfg, tmp_path, configs)
    assert population_groups(jobs) == [[0, 4], [1], [2], [3], [5]]
    results = run_population(jobs)
    assert all(isinstance(r, float) and math.isfinite(r) for r in results), results
    alone = run(tiny_cfg(*configs[2]), run_dir=tmp_path / "alone")
    assert results[2] == alone  # a group of one is an ordinary run


def _interrupt_when(path: Path, done: threading.Event) -> threading.Thread:
    """SIGINT to this process once ``path`` exists (a member's first checkpoint)."""

    def watch() -> None:
        while not done.is_set():
            if path.exists():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("agent", [pytest.param("dqn", marks=pytest.mark.slow), "pqn"])
def test_an_interrupted_population_resumes_exactly(agent, tmp_path, tiny_cfg):
    long = ("protocol.total_steps=1600", "protocol.checkpoint_every=320")
    configs = [(f"agent={agent}", *c, *long) for c in MEMBERS[agent][1:]]  # two: < 20 s
    straight = run_population(jobs_of(tiny_cfg, tmp_path / "straight", configs))

    root = tmp_path / "interrupted"
    done = threading.Event()
    watcher = _interrupt_when(root / "m0" / "checkpoints", done)
    interrupted = run_population(jobs_of(tiny_cfg, root, configs))
    done.set()
    watcher.join()
    states = [RunDir(root / f"m{i}").state().summary for i in range(len(configs))]
    assert [s["status"] for s in states] == ["interrupted"] * len(configs), interrupted
    assert all(320 <= s["num_timesteps"] < 1600 for s in states)
    assert all("interrupted by SIGINT" in str(r) for r in interrupted)

    resumed = run_population(jobs_of(tiny_cfg, root, configs, "resume=true"))
    assert resumed == straight  # exactly: the same batched computation on the same states
    for i in range(len(configs)):
        a, b = root / f"m{i}", tmp_path / "straight" / f"m{i}"
        assert_close_runs(a, b, atol=0.0)
