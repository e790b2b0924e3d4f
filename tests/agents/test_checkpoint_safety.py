"""Loading a checkpoint from an untrusted directory never executes code (issue 14, item 1).

The attack: a pickle whose ``__reduce__`` runs code, planted where an agent's checkpoint is read.
Our baselines' checkpoints are plain data trees (``recsim_env.state_io``: JSON + ``.npz`` with
``allow_pickle=False``) and the torch agents read theirs with ``torch.load(weights_only=True)``;
either way the payload must be refused, and the marker file it would write must not appear.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import recsim_env  # noqa: F401  (registers the ids)
from agents.baselines import (
    DiscountedUCB,
    EpsilonGreedyAgent,
    GreedyAgent,
    LinearThompson,
    LinUCB,
    LongTermRuleAgent,
    OracleAgent,
    OracleLongTermAgent,
    PopularityAgent,
    RandomAgent,
    SlidingWindowUCB,
)
from agents.dqn import DQNAgent
from agents.dqn.adaptive import AdaptiveDQNAgent
from agents.offline import PretrainedDQN
from agents.pqn import PQNAgent
from recsim_env.state_io import CheckpointError, load_tree

BASELINES = [
    RandomAgent,
    PopularityAgent,
    GreedyAgent,
    EpsilonGreedyAgent,
    LinUCB,
    LinearThompson,
    SlidingWindowUCB,
    DiscountedUCB,
    OracleAgent,
    OracleLongTermAgent,
    LongTermRuleAgent,
]
TORCH_AGENTS = [DQNAgent, AdaptiveDQNAgent, PQNAgent, PretrainedDQN]


class WritesMarker:
    """Unpickling this runs ``exec``: it writes ``path`` (what an attacker's payload would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def plant(path: Path, marker: Path) -> None:
    """The old baseline format (a pickled dict) with the payload inside, at ``path``."""
    payload = {"class": "RandomAgent", "hparams": {}, "state": WritesMarker(marker)}
    path.write_bytes(pickle.dumps(payload))


def env(num_envs: int = 4, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec("recsim_env/Stationary-v0", num_envs=num_envs, **kwargs)


def test_the_payload_really_runs_code_under_pickle(tmp_path):
    """The test's own bite: a plain ``pickle.load`` of the planted file writes the marker."""
    marker = tmp_path / "marker"
    plant(tmp_path / "agent", marker)
    with open(tmp_path / "agent", "rb") as f:
        pickle.load(f)
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_baseline_checkpoint_never_unpickles(cls, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "checkpoints" / "step_000000000400" / "agent"  # where the runner reads it
    path.parent.mkdir(parents=True)
    plant(path, marker)
    kwargs = {"returning_users": True} if cls in (OracleLongTermAgent, LongTermRuleAgent) else {}
    with pytest.raises(CheckpointError, match="pickle") as err:
        cls.load(path, env=env(**kwargs))
    assert str(path) in str(err.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("cls", TORCH_AGENTS, ids=lambda c: c.__name__)
def test_torch_agent_checkpoint_never_unpickles(cls, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "agent"
    plant(path, marker)
    with pytest.raises(pickle.UnpicklingError, match=r"[Ww]eights only"):
        cls.load(path, env=env())
    assert not marker.exists()


def test_saved_baseline_is_plain_data_and_typed(tmp_path):
    vec = env()
    agent = LinUCB(vec, seed=3, alpha=0.5)
    agent.learn(40)
    agent.save(tmp_path / "agent")
    tree = load_tree(tmp_path / "agent")  # readable without the agent's code
    assert tree["class"] == "LinUCB" and tree["hparams"]["alpha"] == 0.5
    assert tree["state"]["num_timesteps"] == 40
    assert isinstance(tree["state"]["gram"], np.ndarray)
    assert tree["state"]["rng"]["bit_generator"] == "PCG64"  # the RNG state, as plain data
    # a checkpoint of one agent class does not load as another
    with pytest.raises(CheckpointError, match="LinUCB checkpoint, not LinearThompson"):
        LinearThompson.load(tmp_path / "agent", env=vec)


def test_non_plain_state_fails_at_save_time_naming_the_entry(tmp_path):
    class Opaque:
        pass

    class Leaky(RandomAgent):
        def state_dict(self):
            return {**super().state_dict(), "model": {"layers": [1, Opaque()]}}

    with pytest.raises(TypeError, match=r"state\.model\.layers\[1\].*Opaque"):
        Leaky(env(), seed=0).save(tmp_path / "agent")
    assert not (tmp_path / "agent").exists()


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "agent"
    PopularityAgent(env(), seed=0).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable checkpoint") as err:
        PopularityAgent.load(path, env=env())
    assert str(path) in str(err.value)
    assert issubclass(CheckpointError, ValueError)  # what callers catching ValueError expect
