"""TorchRL's ``GymEnv("recsim_env/…")`` (issue 20): it builds for every registered id (TorchRL
passes ``frameskip`` and retries without it only when the TypeError reads like Python's own), with
``num_envs=N`` too, and its episodes are the env's own (``final_info``).

Needs the ``clients`` extra (``pip install -e .[clients]``; ``make test-slow`` installs it)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="TorchRL tests need torch (the agents extra)")
pytest.importorskip("torchrl", reason="TorchRL is not installed: pip install -e .[clients]")

from episodes import CLIENT_KWARGS, assert_same_episodes, episodes_of, own_episodes, policy  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.envs import GymEnv  # noqa: E402

import recsim_env  # noqa: E402
from recsim_env.observation import get_obs_layout  # noqa: E402

pytestmark = pytest.mark.slow


def _rollout(env, layout, steps: int):
    """A rollout under :func:`episodes.policy` (categorical actions); TorchRL resets ended envs."""

    def act(td: TensorDict) -> TensorDict:
        obs = td["observation"].numpy()
        td["action"] = torch.as_tensor(policy(obs.reshape(-1, obs.shape[-1]), layout)).reshape(
            obs.shape[:-1]
        )
        return td

    return env.rollout(steps, act, break_when_any_done=False)


@pytest.mark.parametrize("env_id", sorted(recsim_env.ENV_IDS))
def test_gym_env_builds_for_every_id_and_records_the_envs_own_episodes(env_id):
    env = GymEnv(env_id, categorical_action_encoding=True, **CLIENT_KWARGS)
    env.set_seed(3)
    layout = get_obs_layout(env._env)
    td = _rollout(env, layout, 60)
    theirs = episodes_of(td["next", "reward"].numpy(), td["next", "done"].numpy())
    assert_same_episodes(theirs, own_episodes(env_id, 3, len(theirs)), f"TorchRL {env_id}")
    env.close()


def test_unknown_kwargs_read_like_pythons_own_type_error():
    """What TorchRL matches on; the message still names the known parameters."""
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'frameskip'") as err:
        recsim_env.RecSimEnv(frameskip=1)
    assert "known parameters" in str(err.value) and "num_items" in str(err.value)


@pytest.mark.parametrize(
    "env_id", ["recsim_env:recsim_env/DriftingUsers-v0", "recsim_env:recsim_env/LongTerm-v0"]
)
def test_gym_env_with_num_envs_records_each_sub_envs_own_episodes(env_id):
    """``GymEnv(id, num_envs=2)`` is Gymnasium's AsyncVectorEnv of two single envs in spawned
    subprocesses, which have not imported ``recsim_env``: the ``"recsim_env:recsim_env/…"`` id
    form makes ``gymnasium.make`` import it there (the plain id: ``NamespaceNotFound``). Seeded
    ``s``, sub-env ``i`` is the single env seeded ``s + i``, and TorchRL's episodes of each are the
    env's own."""
    env = GymEnv(env_id, num_envs=2, categorical_action_encoding=True, **CLIENT_KWARGS)
    assert env.batch_size == torch.Size([2])
    seed = 5
    env.set_seed(seed)
    name = env_id.split(":")[-1]
    layout = get_obs_layout(recsim_env.RecSimEnv(**{**recsim_env.ENV_IDS[name], **CLIENT_KWARGS}))
    td = _rollout(env, layout, 50)
    rewards, dones = td["next", "reward"].numpy(), td["next", "done"].numpy()
    for i in range(2):
        theirs = episodes_of(rewards[i], dones[i])
        ours = own_episodes(name, seed + i, len(theirs))
        assert_same_episodes(theirs, ours, f"TorchRL {env_id} sub-env {i}")
    env.close()
