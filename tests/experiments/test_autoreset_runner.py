"""The runner's ``env.autoreset_mode`` (issue 20): ``same_step`` by default (every earlier run's
stream), ``next_step`` on request, where reset steps are no user-steps for counting and metrics."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest

from agents.base import reset_rows
from agents.baselines import RandomAgent
from experiments.run.config import ConfigError, validate
from experiments.run.job import make_env, run
from experiments.run.protocol import LifelongProtocol
from experiments.run.sinks import CsvSink, MetricWriter, RunContext


def test_the_runner_default_is_same_step_and_next_step_is_an_option(tiny_cfg):
    assert validate(tiny_cfg()).env.autoreset_mode == "same_step"
    env = make_env(validate(tiny_cfg()).env)
    assert env.autoreset_mode == gymnasium.vector.AutoresetMode.SAME_STEP
    env = make_env(validate(tiny_cfg("env.autoreset_mode=next_step")).env)
    assert env.autoreset_mode == gymnasium.vector.AutoresetMode.NEXT_STEP
    with pytest.raises(ConfigError, match=r"invalid env.autoreset_mode='sometimes'.*next_step"):
        validate(tiny_cfg("env.autoreset_mode=sometimes"))


def test_online_metrics_count_user_steps_only_under_next_step(tmp_path, tiny_cfg):
    """Reset steps (reward 0, no click) are left out of the step counts, the means and the
    session lengths: the summary equals the ground truth of the user-steps alone."""
    env = gymnasium.make_vec(
        "recsim_env/Stationary-v0",
        num_envs=8,
        max_session_steps=12,
        budget_min=2.0,  # sessions end at different steps: partial reset steps
        budget_max=14.0,
        autoreset_mode="next_step",
    )
    agent = RandomAgent(env, seed=3)
    settings = validate(
        tiny_cfg(
            "protocol.total_steps=480",
            "protocol.log_every=96",
            "protocol.eval_every=0",
            "protocol.checkpoint_every=0",
        )
    ).protocol
    writer = MetricWriter([CsvSink(RunContext(run_dir=tmp_path), flush_every_s=0)])
    protocol = LifelongProtocol(env, None, writer, settings, tmp_path)
    steps = []

    class Recorder:
        def on_training_start(self, agent):
            protocol.on_training_start(agent)

        def on_step(self, t):
            steps.append(t)
            return protocol.on_step(t)

        def on_training_end(self):
            pass

    protocol.agent = agent
    agent.learn(480, Recorder())
    summary = protocol.summary()
    writer.close()
    live = [np.ones(8, bool) if reset_rows(t.info) is None else ~reset_rows(t.info) for t in steps]
    rewards = np.concatenate([t.rewards[m] for t, m in zip(steps, live, strict=True)])
    rewards = rewards.astype(np.float64)
    clicks = np.concatenate([t.info["clicked"][m] for t, m in zip(steps, live, strict=True)])
    lengths = [
        int(n)
        for t in steps
        if "_final_info" in t.info
        for n in t.info["final_info"]["episode_length"][t.info["_final_info"]]
    ]
    assert sum(int((~m).sum()) for m in live) > 10  # there were reset steps
    assert agent.num_timesteps == len(rewards) >= 480
    assert summary["online/reward"] == pytest.approx(rewards.mean(), rel=1e-12)
    assert summary["online/ctr"] == pytest.approx(clicks.mean(), rel=1e-12)
    assert summary["online/session_length"] == pytest.approx(np.mean(lengths))


@pytest.mark.parametrize("agent", ["dqn", "pqn", "linucb", "sb3_ppo"])
def test_a_next_step_run_completes(agent, tmp_path, tiny_cfg):
    run(tiny_cfg(f"agent={agent}", "env.autoreset_mode=next_step"), run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["num_timesteps"] >= 640
    assert 0 < summary["online/session_length"] <= 200


def test_a_run_dir_saved_before_the_key_resumes_as_same_step(tmp_path, tiny_cfg):
    """config.yaml of a run written before env.autoreset_mode existed: resumed as same_step (what
    every such run was), extended to more steps."""
    run(tiny_cfg("agent=random"), run_dir=tmp_path)
    path = tmp_path / "config.yaml"
    text = path.read_text()
    assert "autoreset_mode: same_step" in text
    path.write_text(text.replace("  autoreset_mode: same_step\n", ""))
    extend = ["agent=random", "resume=true", "protocol.total_steps=960"]
    run(tiny_cfg(*extend), run_dir=tmp_path, overrides=extend)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["num_timesteps"] == 960
