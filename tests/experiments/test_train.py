"""``recsim-train`` end to end: every agent, the output files, the metrics, signals and resume.

Runs are tiny (``protocol=tiny``: 640 user-steps); most run in-process through the compose API and
``experiments.run.job.run``, a few through the real console script in a subprocess.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.base import OnlineAgent, StepCallback, agent_traits
from experiments.run.config import ConfigError, validate
from experiments.run.evaluation import ndcg_at_k
from experiments.run.job import run
from experiments.run.protocol import LifelongProtocol
from experiments.run.rundir import Checkpoint, RunDir, write_json_atomic
from experiments.run.sinks import CsvSink, MetricWriter, RunContext
from recsim_env.state_io import load_tree

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
RECSIM_TRAIN = Path(sys.executable).parent / "recsim-train"
AGENTS = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))
# agents that need returning users (env=long_term): long-term ground truth / quality signals
LONGTERM_AGENTS = {"oracle_longterm", "longterm_rule"}
NOT_DETERMINISTIC = ("time/", "wall_time_s", "run_dir")


def read_metrics(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "metrics.csv")
    assert list(frame.columns) == ["step", "key", "value"]
    return frame


def deterministic(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame.key.str.startswith("time/")].reset_index(drop=True)


def deterministic_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if not k.startswith(NOT_DETERMINISTIC)}


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


# ---------------------------------------------------------------------------------------- every agent
@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_runs_end_to_end(agent, tmp_path, tiny_cfg):
    env = ["env=long_term"] if agent in LONGTERM_AGENTS else []
    value = run(tiny_cfg(f"agent={agent}", "seed=1", *env), run_dir=tmp_path)

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["num_timesteps"] == 640
    assert value == summary["online/reward"]  # the optimised metric is returned to sweepers
    for key in ("online/reward", "online/ctr", "online/regret", "eval/return", "eval/ctr"):
        assert math.isfinite(summary[key]), key
    assert summary["online/regret"] >= 0 and 0 <= summary["online/ctr"] <= 1
    assert 0 < summary["eval/ndcg@k"] <= 1  # every agent here ranks (scores / q_values)

    config = (tmp_path / "config.yaml").read_text()
    assert "${" not in config and "seed: 1" in config  # resolved

    metrics = read_metrics(tmp_path)
    rewards = metrics[metrics.key == "online/reward"]
    assert list(rewards.step) == list(range(64, 641, 64))  # one window per log_every user-steps
    assert set(metrics[metrics.key == "eval/return"].step) == {320, 640}

    checkpoint = Checkpoint(tmp_path / "checkpoints" / "step_000000000640")
    state = load_tree(checkpoint.state)  # JSON + npz: no pickle to load
    assert state["protocol"]["num_timesteps"] == 640 and state["protocol"]["completed"]
    assert not (checkpoint.path / "state.pkl").exists()  # (the agent's own files are its own)
    assert checkpoint.agent.exists()


def test_online_metrics_equal_the_ground_truth_of_the_stream(tmp_path, tiny_cfg):
    """Windows of the CSV recomputed from the raw transitions the agent saw."""
    import gymnasium

    from agents.baselines import RandomAgent

    env = gymnasium.make_vec(
        "recsim_env/Stationary-v0", num_envs=8, max_session_steps=12, autoreset_mode="same_step"
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

    class Recorder(StepCallback):
        def __init__(self) -> None:
            self.steps = []

        def on_training_start(self, agent):
            protocol.on_training_start(agent)

        def on_step(self, t):
            self.steps.append(
                (t.rewards.copy(), t.info["clicked"].copy(), t.info["regret"].copy(), t.info)
            )
            return protocol.on_step(t)

    recorder = Recorder()
    protocol.agent = agent
    agent.learn(480, recorder)
    summary = protocol.summary()
    writer.close()

    rewards = np.stack([s[0] for s in recorder.steps]).astype(np.float64)  # (60 steps, 8 users)
    clicks = np.stack([s[1] for s in recorder.steps])
    regrets = np.stack([s[2] for s in recorder.steps]).astype(np.float64)
    lengths = [
        int(length)
        for *_, info in recorder.steps
        if "_final_info" in info
        for length in info["final_info"]["episode_length"][info["_final_info"]]
    ]
    metrics = read_metrics(tmp_path).pivot(index="step", columns="key", values="value")
    window = 96 // 8
    expected_reward = rewards.reshape(-1, window, 8).mean(axis=(1, 2))
    np.testing.assert_allclose(metrics["online/reward"].to_numpy(), expected_reward, rtol=1e-12)
    np.testing.assert_allclose(
        metrics["online/ctr"].to_numpy(), clicks.reshape(-1, window, 8).mean(axis=(1, 2))
    )
    np.testing.assert_allclose(
        metrics["online/cumulative_regret"].to_numpy(),
        np.cumsum(regrets.reshape(-1, window * 8).sum(axis=1)),
        rtol=1e-6,
    )
    assert summary["online/reward"] == pytest.approx(rewards.mean(), rel=1e-12)
    assert summary["online/session_length"] == pytest.approx(np.mean(lengths))
    assert len(lengths) > 10  # sessions of at most 12 steps did end


def test_oracle_has_zero_regret_and_beats_random(tmp_path, tiny_cfg):
    oracle = run(tiny_cfg("agent=oracle", "env=stationary"), run_dir=tmp_path / "oracle")
    rand = run(tiny_cfg("agent=random", "env=stationary"), run_dir=tmp_path / "random")
    summary = json.loads((tmp_path / "oracle" / "summary.json").read_text())
    assert summary["online/regret"] == 0.0 and summary["online/cumulative_regret"] == 0.0
    assert summary["eval/regret"] == 0.0 and summary["eval/ndcg@k"] == pytest.approx(1.0)
    assert oracle > rand


def test_drift_events_are_recorded_at_their_steps(tmp_path, tiny_cfg):
    # a jump every 2,000 world ticks (a drift spec given in the config); one vector step of
    # 2 users = one tick
    run(
        tiny_cfg(
            "agent=popularity",
            "env=stationary",
            "env.kwargs.drift=[{schedule:periodic,period:2000,process:jump}]",
            "env.num_envs=2",
            "protocol.total_steps=8400",
            "protocol.log_every=400",
            "protocol.eval_every=0",
            "protocol.checkpoint_every=0",
        ),
        run_dir=tmp_path,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lifelong/drift_event_steps"] == [4000, 8000]
    assert summary["online/drift_events"] == 2 == summary["lifelong/num_drift_events"]
    events = read_metrics(tmp_path).query("key == 'online/drift_events' and value > 0")
    assert list(events.step) == [4000, 8000]
    assert "lifelong/recovery_time_km_mean" in summary


def test_sb3_logger_scalars_reach_the_csv(tmp_path, tiny_cfg):
    run(tiny_cfg("agent=sb3_ppo", "agent.n_steps=8", "agent.batch_size=32"), run_dir=tmp_path)
    keys = set(read_metrics(tmp_path).key)
    assert {"train/value_loss", "train/lr", "online/reward", "eval/return"} <= keys


@pytest.mark.parametrize("logger", ["none", "wandb"])
def test_other_loggers_still_write_the_summary(logger, tmp_path, monkeypatch, tiny_cfg):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    value = run(tiny_cfg("agent=popularity", f"logger={logger}"), run_dir=tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["online/reward"] == value
    assert (tmp_path / "metrics.csv").exists() == (logger == "wandb")  # W&B keeps the local CSV


def test_plugin_sink_is_one_class(tmp_path, tiny_cfg):
    """A new metric destination: a class with write / write_summary / close and a `_target_`."""
    ListSink.instances.clear()
    run(
        tiny_cfg("agent=random", f"+logger.sinks.memory._target_={__name__}.ListSink"),
        run_dir=tmp_path,
    )
    (sink,) = ListSink.instances
    assert sink.closed and sink.summary["status"] == "completed"
    csv = read_metrics(tmp_path)
    assert len(sink.rows) == len(csv)  # the same rows reach every sink
    assert sink.context.run_dir == tmp_path and sink.context.config["seed"] == 0


class ListSink:
    instances: list[ListSink] = []

    def __init__(self, context: RunContext) -> None:
        self.context, self.rows, self.summary, self.closed = context, [], None, False
        ListSink.instances.append(self)

    def write(self, step, metrics):
        self.rows += [(step, k, v) for k, v in metrics.items()]

    def write_summary(self, summary):
        self.summary = dict(summary)

    def close(self):
        self.closed = True


# ---------------------------------------------------------------------------------------- plug-ins
class NoInfoAgent(OnlineAgent):
    """A plug-in written against the documented minimum: ``act(obs, *, explore=False)``."""

    def __init__(self, env, seed=None):
        super().__init__(env, seed=seed)
        self.seen_info = False

    def act(self, obs, *, explore=False):
        return self.rng.integers(0, self.layout.num_candidates, size=obs.shape[0])

    def scores(self, obs):
        return obs[:, : self.layout.num_candidates]  # any ranking will do


def test_a_plugin_agent_without_info_in_act_runs(tmp_path, tiny_cfg):
    traits = agent_traits(NoInfoAgent.__new__(NoInfoAgent))
    assert not traits.act_uses_info and not traits.scores_uses_info
    value = run(
        tiny_cfg("agent=random", f"agent._target_={__name__}.NoInfoAgent"), run_dir=tmp_path
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and value == summary["online/reward"]
    assert math.isfinite(summary["eval/return"]) and 0 < summary["eval/ndcg@k"] <= 1


class DeclaredInfoAgent(NoInfoAgent):
    act_uses_info = True  # declared: the runner passes info (and act must take it)

    def act(self, obs, *, explore=False, **kwargs):
        self.seen_info = self.seen_info or "info" in kwargs
        return super().act(obs, explore=explore)


def test_declared_traits_win_over_signatures(make_env):
    env = make_env()
    agent = DeclaredInfoAgent(env, seed=0)
    assert agent_traits(agent).act_uses_info and NoInfoAgent.act_uses_info is False
    agent.learn(4)
    assert agent.seen_info


# ---------------------------------------------------------------------------------------- run dir
def test_a_second_writer_of_a_run_dir_is_refused(tmp_path, tiny_cfg):
    """A live process holds the run dir: a run into it fails at once, naming dir and pid, and
    leaves the holder's files alone; once the holder is gone (killed), the dir is free again."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from experiments.run.rundir import RunDir\n"
            "with RunDir(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"{tmp_path}.*pid {holder.pid}"):
            run(tiny_cfg("agent=random"), run_dir=tmp_path)
        assert not (tmp_path / "summary.json").exists() and not (tmp_path / "error.txt").exists()
    finally:
        holder.kill()
        holder.wait()
    run(tiny_cfg("agent=random"), run_dir=tmp_path)  # a dead holder's lock is released
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"


def test_a_pickled_checkpoint_of_an_earlier_version_is_never_loaded(tmp_path, tiny_cfg):
    import pickle

    run(tiny_cfg("agent=random"), run_dir=tmp_path)
    (checkpoint,) = RunDir(tmp_path).checkpoints()
    marker = tmp_path / "executed"
    checkpoint.state.unlink()
    (checkpoint.path / "state.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(ConfigError, match="earlier version"):
        run(tiny_cfg("agent=random", "resume=true", "protocol.total_steps=1280"), run_dir=tmp_path)
    assert not marker.exists()


class _Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


# ---------------------------------------------------------------------------------------- metrics io
def test_csv_sink_rewinds_to_a_checkpoint_and_appends(tmp_path):
    ctx = RunContext(run_dir=tmp_path)
    sink = CsvSink(ctx, flush_every_s=60)
    sink.write(1, {"a": 1.0})
    state = sink.state_dict()  # flushes
    sink.write(2, {"a": 2.0})
    sink.close()
    resumed = CsvSink(RunContext(run_dir=tmp_path, resumed=True))
    resumed.load_state_dict(state)
    resumed.write(2, {"a": 0.1 + 0.2})
    resumed.close()
    assert (
        tmp_path / "metrics.csv"
    ).read_text() == "step,key,value\n1,a,1.0\n2,a,0.30000000000000004\n"


def test_summary_json_is_written_atomically(tmp_path):
    write_json_atomic(
        tmp_path / "summary.json", {"x": np.float32(0.5), "y": [np.int64(3)], "z": math.nan}
    )
    assert json.loads((tmp_path / "summary.json").read_text().replace("NaN", "null")) == {
        "x": 0.5,
        "y": [3],
        "z": None,
    }
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left


def test_ndcg_of_perfect_reversed_and_tied_rankings():
    rel = np.array([[3.0, 2.0, 1.0, 0.0]])
    assert ndcg_at_k(rel, rel, 3)[0] == pytest.approx(1.0)
    worst = ndcg_at_k(-rel, rel, 2)[0]
    assert worst == pytest.approx((0 + 1 / np.log2(3)) / (3 + 2 / np.log2(3)))
    assert math.isnan(ndcg_at_k(rel, np.zeros((1, 4)), 2)[0])


# ---------------------------------------------------------------------------------------- resume
def test_existing_run_is_not_overwritten_and_a_completed_run_is_not_retrained(tmp_path, tiny_cfg):
    first = run(tiny_cfg("agent=linucb"), run_dir=tmp_path, overrides=["agent=linucb"])
    csv = (tmp_path / "metrics.csv").read_bytes()
    record = RunDir(tmp_path).job()
    assert record.run_id and record.overrides == ["agent=linucb"]
    with pytest.raises(ConfigError, match="resume=true"):
        run(tiny_cfg("agent=linucb"), run_dir=tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"
    assert not (tmp_path / "error.txt").exists()
    again = run(
        tiny_cfg("agent=linucb", "resume=true"),
        run_dir=tmp_path,
        overrides=["resume=true", "protocol.total_steps=640"],
    )
    assert again == first
    # the same run: its id and its overrides are kept (a resumable override is updated)
    assert RunDir(tmp_path).job().run_id == record.run_id
    assert RunDir(tmp_path).job().overrides == ["agent=linucb", "protocol.total_steps=640"]
    assert (tmp_path / "metrics.csv").read_bytes() == csv


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(RECSIM_TRAIN), *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ckpts = run_dir / "checkpoints"
        if ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir()):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc={proc.returncode}) before its first checkpoint")
        time.sleep(0.005)
    pytest.fail("no checkpoint appeared")


RESUME_ARGS = [
    "agent=dqn",
    "agent.buffer_size=4000",
    "agent.learning_starts=500",
    "protocol=tiny",
    "protocol.total_steps=24000",
    "protocol.log_every=800",
    "protocol.eval_every=4000",
    "protocol.checkpoint_every=2000",
    "protocol.lifelong_window=1600",
    "progress=false",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, compose_cfg) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run(compose_cfg(*RESUME_ARGS), run_dir=run_dir)
    return run_dir


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_same_result(
    sig, uninterrupted, tmp_path, run_dir, subprocess_env
):
    """SIGKILL: resume from the last periodic checkpoint. SIGTERM: checkpoint now, exit 130."""
    proc = _start(
        [*RESUME_ARGS, f"hydra.run.dir={run_dir}"], tmp_path / "first.log", subprocess_env
    )
    _wait_for_checkpoint(proc, run_dir)
    if sig == signal.SIGTERM:
        time.sleep(0.3)  # somewhere between two periodic checkpoints
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    log = (tmp_path / "first.log").read_text()
    assert rc == (-9 if sig == signal.SIGKILL else 130), log
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["status"] in ("running", "interrupted")
    assert interrupted["num_timesteps"] < 24000, "killed too late to test anything"
    if sig == signal.SIGTERM:
        assert interrupted["status"] == "interrupted" and "resume=" in log

    resumed = subprocess.run(
        [str(RECSIM_TRAIN), f"resume={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout + resumed.stderr

    assert same(deterministic_summary(run_dir), deterministic_summary(uninterrupted))
    pd.testing.assert_frame_equal(
        deterministic(read_metrics(run_dir)), deterministic(read_metrics(uninterrupted))
    )
    assert not list(run_dir.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------- console script
def test_recsim_train_console_script(run_dir, subprocess_env):
    result = subprocess.run(
        [str(RECSIM_TRAIN), "agent=greedy", "protocol=tiny", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "train.log",
        "run.json",
        ".hydra/overrides.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert RunDir(run_dir).job().choices["agent"] == "greedy"
    assert "online/reward" in result.stdout and str(run_dir) in result.stdout
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["seeed=3"], "did you mean 'seed'"),
        (["agent=dqnn"], "Available options in 'agent'"),
        (["protocol.total_steps=0"], "protocol.total_steps=0"),
    ],
)
def test_bad_command_lines_fail_before_training(args, expected, run_dir, subprocess_env):
    result = subprocess.run(
        [str(RECSIM_TRAIN), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert not (run_dir / "metrics.csv").exists()
