"""recsim-env: a Gymnasium simulator of users whose preferences drift (lifelong recommendation).

Importing the package registers the environment ids::

    import gymnasium as gym
    import recsim_env  # noqa: F401

    env = gym.make("recsim_env/DriftingUsers-v0", drift="abrupt")
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=1024)  # the native batched env
    # autoreset: AutoresetMode.NEXT_STEP (Gymnasium's; make_vec's default) or SAME_STEP (SB3's)
    envs = gym.make_vec("recsim_env/DriftingUsers-v0", num_envs=1024, autoreset_mode="same_step")

A process that has not imported ``recsim_env`` (a subprocess of ``AsyncVectorEnv``, TorchRL's
``GymEnv(id, num_envs=N)``, a remote RLlib env runner) finds the ids through the module form
``"recsim_env:recsim_env/DriftingUsers-v0"``: ``gymnasium.make`` imports ``recsim_env`` first.

``recsim_env/MovieLens-v0`` is calibrated to a real log (``SimConfig.calibration``, see
:mod:`recsim_env.grounding`); any id takes ``calibration=<dir>`` with a bundle of ``recsim-calibrate``.
"""

from gymnasium.envs.registration import register, registry

from recsim_env.config import SimConfig
from recsim_env.drift import DRIFT_PRESETS, PROCESSES, SCHEDULES
from recsim_env.env import RecSimEnv
from recsim_env.grounding import Calibration
from recsim_env.observation import ObsLayout, get_obs_layout
from recsim_env.spaces import InvalidActionError, SlateSpace
from recsim_env.vector_env import RecSimVectorEnv
from recsim_env.world import World

ENV_IDS: dict[str, dict] = {
    # gradual Ornstein–Uhlenbeck drift + abrupt jumps at Poisson times
    "recsim_env/DriftingUsers-v0": {"drift": "mixed"},
    "recsim_env/Stationary-v0": {"drift": "none"},
    # the population jumps to a new interest profile every 2,000 ticks
    "recsim_env/AbruptShift-v0": {"drift": "abrupt"},
    # recurring regimes: the population alternates between two profiles every 1,000 ticks
    "recsim_env/Seasonal-v0": {"drift": "seasonal"},
    # item churn (≈ 2 new items per tick, no history) and trending topics
    "recsim_env/ColdStart-v0": {"drift": "trending", "item_churn": 0.002},
    # returning users: a lifetime of sessions per user, return and gap depend on satisfaction;
    # observed per-item quality signals and id features; the RL episode is the lifetime
    "recsim_env/LongTerm-v0": {
        "drift": "gradual",
        "returning_users": True,
        "horizon": "lifetime",
        "item_embedding_dim": 4,
    },
    # grounded in a real log: MovieLens-100K's items and users (info["user_id"], info["item_id"]
    # name them), its fitted parameters and its population's interest trajectory (replayed);
    # returning users, the RL episode is the lifetime. Fetched and fitted on first use (needs the
    # data extras; see recsim_env/grounding.py), or `recsim-data fetch movielens-100k` +
    # `recsim-calibrate movielens-100k`.
    "recsim_env/MovieLens-v0": {
        "calibration": "movielens-100k",
        "returning_users": True,
        "horizon": "lifetime",
    },
}

for _id, _kwargs in ENV_IDS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point="recsim_env.env:RecSimEnv",
            vector_entry_point="recsim_env.vector_env:make_vector_env",
            kwargs=dict(_kwargs),
        )

__all__ = [
    "DRIFT_PRESETS",
    "ENV_IDS",
    "PROCESSES",
    "SCHEDULES",
    "Calibration",
    "InvalidActionError",
    "ObsLayout",
    "RecSimEnv",
    "RecSimVectorEnv",
    "SimConfig",
    "SlateSpace",
    "World",
    "get_obs_layout",
]
