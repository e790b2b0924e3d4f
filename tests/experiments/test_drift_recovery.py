"""The runner's drift-recovery part and click-prediction metrics, on short real runs.

AbruptShift-v0 with a jump every 100 ticks (32 users: 3,200 user-steps), so that one event is
watched whole in 6,400 user-steps. Recovery settings scaled to it (baseline 1,024, horizon 3,072,
sustain 256 user-steps).
"""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from agents.base import Transition
from experiments.analysis import schema
from experiments.run.config import validate
from experiments.run.job import run
from experiments.run.protocol import RunInterrupted
from experiments.run.rundir import RunDir
from experiments.run.steps import LifelongSummary, Window
from recsim_env.state_io import load_tree

ABRUPT = (
    "env=abrupt",
    "env.num_envs=32",
    "env.kwargs.drift=[{schedule:periodic,period:100,process:jump}]",
    "protocol.total_steps=6400",
    "protocol.log_every=320",
    "protocol.eval_every=0",
    "protocol.checkpoint_every=0",
    "protocol.recovery_baseline=1024",
    "protocol.recovery_horizon=3072",
    "protocol.recovery_sustain=256",
    "logger=csv",
)
NOT_DETERMINISTIC = ("time/", "wall_time_s", "run_dir")


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def recovery_keys(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if "recover" in k}


def same(a: dict, b: dict) -> bool:
    """Equal, NaN == NaN."""
    if a.keys() != b.keys():
        return False
    return all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or x == y
        for x, y in ((a[k], b[k]) for k in a)
    )


def test_oracle_recovers_at_zero_and_a_frozen_agent_is_censored(tmp_path, tiny_cfg):
    run(tiny_cfg(*ABRUPT, "agent=oracle"), run_dir=tmp_path / "oracle")
    oracle = summary_of(tmp_path / "oracle")
    assert oracle["lifelong/drift_event_steps"] == [3200, 6400]
    assert oracle["lifelong/recovery_recovered"] == 1  # the jump at 3,200
    assert oracle["lifelong/recovery_undefined"] == 1  # the jump at 6,400 ends the run
    assert oracle["lifelong/recovery_time_km_mean"] == 0
    assert oracle["lifelong/recovery_drop"] == pytest.approx(0.0, abs=1e-12)
    assert oracle["lifelong/recovery_pre_level"] == pytest.approx(1.0)

    # LinUCB frozen after 3,000 user-steps, just before the jump. (A frozen policy is not hurt by
    # every jump: a new profile may suit it. Seed 0 is one where the jump hurts, as the drop and
    # the area show.)
    frozen_cfg = tiny_cfg(*ABRUPT, "agent=frozen", "agent.learn_steps=3000", "seed=0")
    run(frozen_cfg, run_dir=tmp_path / "frozen")
    frozen = summary_of(tmp_path / "frozen")
    assert frozen["lifelong/recovery_censored"] == 1 and frozen["lifelong/recovery_recovered"] == 0
    assert frozen["lifelong/recovery_drop"] > 0.1 and frozen["lifelong/recovery_auc"] < 0.9
    assert math.isnan(frozen["lifelong/recovery_time_km_median"])  # never reaches 1/2

    # the event-aligned curves are in the run dir, for recsim-compare
    curves = load_tree(RunDir(tmp_path / "frozen").recovery_path)
    assert [r["status"] for r in curves["records"]] == ["censored", "undefined"]
    value, best = curves["value"], curves["best"]
    assert value.shape == best.shape == (2, curves["offsets"].size)
    after = curves["offsets"] > 0
    watched = np.isfinite(value[0]) & after
    assert watched.sum() == 3072 // 32  # the whole horizon, one bin per vector step
    assert np.nansum(value[0][watched]) / np.nansum(best[0][watched]) == pytest.approx(
        frozen["lifelong/recovery_auc"] * frozen["lifelong/recovery_pre_level"]
    )


def test_frozen_copies_at_each_event_leave_the_stream_alone(tmp_path, tiny_cfg):
    """protocol.recovery_counterfactual: the learner recovers from the jump, a copy of it frozen at
    the jump does not (seed 0, as above); the learner's own stream and metrics are the same as
    without the copies."""
    run(tiny_cfg(*ABRUPT, "agent=linucb"), run_dir=tmp_path / "plain")
    cfg = tiny_cfg(*ABRUPT, "agent=linucb", "protocol.recovery_counterfactual=true")
    run(cfg, run_dir=tmp_path / "copies")
    plain, copies = summary_of(tmp_path / "plain"), summary_of(tmp_path / "copies")
    assert copies["lifelong/recovery_recovered"] == 1
    assert copies["lifelong/frozen_recovery_censored"] == 1
    assert copies["lifelong/frozen_recovery_auc"] < copies["lifelong/recovery_auc"]
    assert not any(k.startswith("lifelong/frozen_") for k in plain)
    untouched = {
        k: v
        for k, v in copies.items()
        if not k.startswith(("lifelong/frozen_", *NOT_DETERMINISTIC))
    }
    assert same(untouched, {k: v for k, v in plain.items() if not k.startswith(NOT_DETERMINISTIC)})
    frozen = load_tree(RunDir(tmp_path / "copies").recovery_path)["frozen"]
    assert [r["status"] for r in frozen["records"]] == ["censored", "undefined"]


def test_an_interrupted_run_resumes_to_the_same_recovery(tmp_path, tiny_cfg):
    """SIGTERM mid-horizon (4,800 user-steps: the event at 3,200 is open), then resume: the
    summary (recovery and frozen copies included) and the curves equal an uninterrupted run's."""
    over = (*ABRUPT, "agent=linucb", "protocol.recovery_counterfactual=true")
    over = (*over, "protocol.eval_every=1600", "protocol.checkpoint_every=3200")
    run(tiny_cfg(*over), run_dir=tmp_path / "whole")

    def stop_at_4800(step, summary):
        if step == 4800:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterrupted):
        run(tiny_cfg(*over), run_dir=tmp_path / "cut", on_eval=stop_at_4800)
    interrupted = summary_of(tmp_path / "cut")
    assert interrupted["status"] == "interrupted" and interrupted["num_timesteps"] < 6400
    run(tiny_cfg(*over, "resume=true"), run_dir=tmp_path / "cut")

    def deterministic(d):
        return {k: v for k, v in summary_of(d).items() if not k.startswith(NOT_DETERMINISTIC)}

    whole, resumed = deterministic(tmp_path / "whole"), deterministic(tmp_path / "cut")
    assert recovery_keys(whole)["lifelong/recovery_recovered"] == 1
    assert same(resumed, whole)
    a, b = (load_tree(RunDir(tmp_path / d).recovery_path) for d in ("whole", "cut"))
    for key in ("value", "best", "offsets"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["frozen"]["value"], b["frozen"]["value"])


def test_click_metrics_for_agents_with_a_click_model_only(tmp_path, tiny_cfg):
    extra = ("protocol.eval_episodes=32", "protocol.total_steps=3200")
    run(tiny_cfg("agent=greedy", *extra), run_dir=tmp_path / "greedy")
    run(tiny_cfg("agent=random", *extra), run_dir=tmp_path / "random")
    greedy, rand = summary_of(tmp_path / "greedy"), summary_of(tmp_path / "random")
    assert set(schema.CLICK_KEYS) <= set(greedy)
    assert not set(schema.CLICK_KEYS) & set(rand)  # no model: no key, never a made-up value
    for key in schema.CLICK_KEYS:
        assert 0.0 <= greedy[key] <= (math.inf if "logloss" in key else 1.0), key
    # the ground truth click_prob, on the same shown items, ranks clicks at least as well
    assert greedy["eval/auc_ceiling"] >= greedy["eval/auc"]
    assert greedy["eval/logloss_ceiling"] <= greedy["eval/logloss"]
    logged = (tmp_path / "greedy" / "metrics.csv").read_text()
    assert (
        ",eval/auc," in logged
        and ",eval/auc," not in (tmp_path / "random" / "metrics.csv").read_text()
    )


def test_lifelong_windows_label_the_regime_their_rewards_were_earned_in(tiny_cfg):
    """Jumps on window boundaries (issue 12): the window closed by the step that flags the jump
    earned pre-jump rewards, so it keeps the old regime's label and the event belongs to the next
    window. Fed by hand: 4 users, windows of 8 user-steps, a jump flagged at step 16."""
    settings = validate(tiny_cfg()).protocol
    part = LifelongSummary(settings)
    for k in range(1, 9):  # vector steps of 4 users: steps 4 .. 32
        step = 4 * k
        info = {"drift_phase": np.full(4, int(step >= 16)), "drift_event": np.full(4, step == 16)}
        zeros = np.zeros(4)
        part.on_step(
            None, Transition(zeros, zeros, zeros, zeros, zeros, zeros, zeros, info, step), info
        )
        if step % 8 == 0:
            part.on_window(
                None, Window(step, 8, {"online/reward": 1.0 * (step <= 16), "online/regret": 0.0})
            )
    assert part.state.steps == [8, 16, 24, 32]
    assert part.state.phases == [0, 0, 1, 1]  # the window at 16 is pre-jump
    assert part.state.drift_event_steps == [16]
    summary = part.summary()
    assert summary["lifelong/num_drift_events"] == 1
    assert summary["lifelong/drift_event_steps"] == [16]
