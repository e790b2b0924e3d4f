"""``RecSimEnv``: one user stream (the B = 1 view of the batched core)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from recsim_env.config import SimConfig
from recsim_env.core import BatchedCore
from recsim_env.render import render_ansi, render_rgb
from recsim_env.spaces import (
    InvalidRenderModeError,
    action_space,
    observation_space,
    validate_actions,
)
from recsim_env.validation import check_int
from recsim_env.world import World


class RecSimEnv(gym.Env):
    """A single user stream. ``user_index`` picks which user stream of the population this env
    serves: ``RecSimEnv(user_index=i)`` seeded ``s`` sees exactly what row ``i`` of a
    ``RecSimVectorEnv`` seeded ``s`` sees (same catalogue, drift, users and clicks)."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        world: World | None = None,
        user_index: int = 0,
        **kwargs: Any,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise InvalidRenderModeError(
                f"invalid render_mode={render_mode!r}: expected None or one of {self.metadata['render_modes']}"
            )
        self.config = SimConfig.from_kwargs(**kwargs)
        self.core = BatchedCore(self.config, 1, world=world, user_index=user_index)
        self.render_mode = render_mode
        self.obs_layout = self.core.layout
        self.observation_space = observation_space(self.config, self.obs_layout)
        self.action_space = action_space(self.config)

    @property
    def world(self) -> World:
        return self.core.world

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.core.check_usable("reset")
        seed = check_int("seed", seed, 0, optional=True)  # numpy integers too
        super().reset(seed=seed)
        obs, info = self.core.reset(seed)
        return obs[0], _row(info)

    def step(self, action):
        if self.core.closed or not self.core.ready:  # before validating the action
            self.core.check_usable("step")
        actions = validate_actions(self.config, np.asarray(action)[None], 1)
        obs, reward, terminated, truncated, info = self.core.step(actions, autoreset=False)
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), _row(info)

    def close(self) -> None:
        """Release the env: any later ``step``/``reset`` raises ``ClosedEnvironmentError``."""
        self.core.close()
        super().close()

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return render_ansi(self.core)
        if self.render_mode == "rgb_array":
            return render_rgb(self.core)
        return None

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state)


def _row(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in info.items():
        v = value[0]
        out[key] = v.item() if isinstance(v, np.generic) else v
    return out
