"""The shared part of the SB3 adapters: :class:`SB3Agent` (hyperparameters, ``learn``/``act``,
the save / trusted-load path, continuing a stream) and :func:`as_sb3_env`.

What the adapters do and their common keys: :mod:`agents.sb3.adapters`, which holds the
per-algorithm classes (DQN, QR-DQN, PPO, A2C) and re-exports these names.
"""

from __future__ import annotations

import json
import logging
import sys
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecEnv

from agents.base import Info, StepCallback
from agents.sb3 import hparams as hp
from agents.sb3.bridge import StepCallbackBridge, StepCallbackOutputFormat, find_recsim_vec_env
from recsim_env.sb3_vec_env import RecSimVecEnv

# the adapters' logger, named as before the split (what users filter on)
log = logging.getLogger("agents.sb3.adapters")
Param = hp.Param

COMMON_PARAMS = hp.COMMON_PARAMS

# keys the adapters set themselves: sb3_kwargs must not set them behind the uniform names' back
_RESERVED_SB3_KWARGS = {
    "policy": "(always MlpPolicy)",
    "env": "(the env argument)",
    "learning_rate": "lr / lr_schedule",
    "gamma": "gamma",
    "seed": "seed",
    "device": "device",
    "verbose": "verbose",
    "exploration_initial_eps": "epsilon_start",
    "exploration_final_eps": "epsilon_end",
    "exploration_fraction": "exploration_fraction",
    "buffer_size": "buffer_size",
    "learning_starts": "learning_starts",
    "batch_size": "batch_size",
    "train_freq": "train_freq",
    "gradient_steps": "gradient_steps",
    "target_update_interval": "target_update_interval",
    "n_steps": "n_steps",
    "ent_coef": "ent_coef",
    "n_epochs": "n_epochs",
    "gae_lambda": "gae_lambda",
    "clip_range": "clip_range",
    "_init_setup_model": "(internal)",
}


def as_sb3_env(env: Any) -> Any:
    """What SB3 gets: an SB3 ``VecEnv`` as is, a gymnasium ``VectorEnv`` as :class:`RecSimVecEnv`
    (same batched core), anything else (a single env, an env id) as is for SB3 to wrap."""
    if env is None or isinstance(env, VecEnv):
        return env
    if isinstance(env, gym.vector.VectorEnv):
        return RecSimVecEnv(env)
    return env


def _action_space(env: Any) -> spaces.Space | None:
    if env is None:
        return None
    if isinstance(env, gym.vector.VectorEnv):
        return env.single_action_space
    return getattr(env, "action_space", None)


class SB3Agent:
    """Base adapter: one SB3 algorithm behind the :class:`~agents.base.Agent` contract.

    Subclasses set ``algorithm`` (the SB3 class), ``params`` (their hyperparameters on top of the
    common ones) and ``_algorithm_kwargs`` (uniform names → SB3 constructor arguments).

    Attributes:
        model: the SB3 model (``model.learn``/``model.save`` are SB3's own).
        env: the env given to the constructor/``load``; ``vec_env``: what SB3 trains on.
    """

    algorithm: ClassVar[type[BaseAlgorithm]]
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, env: Any, **hyperparameters: Any) -> None:
        self._hparams = hp.validate(type(self).__name__, self.all_params(), hyperparameters)
        self._check_cross(self._hparams)
        self._check_action_space(_action_space(env))
        torch.set_num_threads(self._hparams["torch_threads"])
        self.env = env
        self.vec_env = as_sb3_env(env)
        self._lr_schedule, self._eps_schedule = self._make_schedules(self._hparams)
        model = self.algorithm(
            self._policy(self._hparams), self.vec_env, **self._sb3_kwargs(self._hparams)
        )
        model.recsim_hparams = {"agent": type(self).__qualname__, **self._hparams}
        self._attach(model)

    # ------------------------------------------------------------------ hyperparameters
    @classmethod
    def all_params(cls) -> dict[str, Param]:
        return {**COMMON_PARAMS, **cls.params}

    def hyperparameters(self) -> dict[str, Any]:
        """The validated hyperparameters, defaults included (what ``load`` rebuilds from)."""
        return dict(self._hparams)

    def _check_cross(self, values: dict[str, Any]) -> None:
        """Constraints between keys (subclasses extend)."""
        owner = type(self).__name__
        for key, value in values["sb3_kwargs"].items():
            if key in _RESERVED_SB3_KWARGS:
                raise ValueError(
                    f"{owner}: sb3_kwargs.{key}={value!r} is set through the hyperparameter "
                    f"{_RESERVED_SB3_KWARGS[key]}; allowed in sb3_kwargs: any other argument of "
                    f"{self.algorithm.__name__}"
                )
        net_arch = values["sb3_kwargs"].get("policy_kwargs", {}).get("net_arch")
        if net_arch is not None:
            raise ValueError(
                f"{owner}: sb3_kwargs.policy_kwargs.net_arch={net_arch!r} is set through "
                "hidden_sizes; allowed: other policy_kwargs"
            )

    def _check_action_space(self, space: spaces.Space | None) -> None:
        if space is not None and not isinstance(space, spaces.Discrete):
            raise ValueError(
                f"{type(self).__name__} needs a Discrete action space (single-item mode, "
                f"slate_size=0), got {space}: SB3's DQN/QR-DQN support only Discrete actions, "
                "and its PPO/A2C would sample slate positions independently, proposing duplicate "
                "items that the simulator rejects"
            )

    def _make_schedules(
        self, values: dict[str, Any]
    ) -> tuple[hp.StepSchedule, hp.StepSchedule | None]:
        horizon = values["schedule_steps"]
        lr = values["lr"]
        lr_end = 0.0 if values["lr_schedule"] == "linear" else lr
        return hp.StepSchedule(lr, lr_end, 1.0, horizon), None

    def _sb3_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        extra = dict(values["sb3_kwargs"])
        policy_kwargs = {"net_arch": list(values["hidden_sizes"]), **extra.pop("policy_kwargs", {})}
        return {
            "learning_rate": self._lr_schedule,
            "gamma": values["gamma"],
            "policy_kwargs": policy_kwargs,
            "seed": values["seed"],
            "device": values["device"],
            "verbose": values["verbose"],
            **self._algorithm_kwargs(values),
            **extra,
        }

    def _algorithm_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _policy(self, values: dict[str, Any]) -> str | type[Any]:
        """SB3's policy argument (subclasses may pick another network)."""
        return "MlpPolicy"

    # ------------------------------------------------------------------ wiring
    def _attach(self, model: BaseAlgorithm) -> None:
        """Schedules and logger onto a freshly built or loaded model."""
        self.model = model
        model.learning_rate = self._lr_schedule
        model.lr_schedule = FloatSchedule(self._lr_schedule)
        if self._eps_schedule is not None:
            # SB3's DQN._setup_model (run again by load) builds its own; ours may span a horizon
            model.exploration_schedule = self._eps_schedule
        self._writer = StepCallbackOutputFormat()
        formats: list[KVWriter] = [self._writer]
        if self._hparams["verbose"] >= 1:
            formats.append(HumanOutputFormat(sys.stdout))
        model.set_logger(Logger(folder=None, output_formats=formats))

    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    @property
    def num_envs(self) -> int:
        return int(self.model.n_envs)

    # ------------------------------------------------------------------ the contract
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> SB3Agent:
        """Train for ``total_steps`` more user-steps with SB3's own ``learn``.

        ``callback`` gets ``on_step`` per vector step (through :class:`StepCallbackBridge`) and
        ``on_log`` at every SB3 logger dump. Repeated calls continue the same stream
        (``reset_num_timesteps=False``).
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
            raise ValueError(f"total_steps={total_steps!r}; allowed: an integer >= 0")
        if total_steps < 0:
            raise ValueError(f"total_steps={total_steps!r}; allowed: an integer >= 0")
        if self.model.get_env() is None:
            raise RuntimeError(
                f"{type(self).__name__} was loaded without an env; pass env= to load() to train"
            )
        learn_total = self.model.num_timesteps + int(total_steps)
        for schedule in (self._lr_schedule, self._eps_schedule):
            if schedule is not None:
                schedule.learn_total = learn_total
        bridge = StepCallbackBridge(callback, agent=self) if callback is not None else None
        self._writer.target = callback
        try:
            self.model.learn(
                int(total_steps),
                callback=bridge,
                log_interval=self._hparams["log_interval"],
                reset_num_timesteps=False,
                tb_log_name=type(self).__name__,
            )
        finally:
            self._writer.target = None
        return self

    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        """SB3's ``predict``: greedy/mode when ``explore`` is false, else the behaviour policy.

        (SB3's DQN explores with one ε coin per call, shared by the whole batch, drawn from the
        global numpy RNG that ``seed`` seeds.)
        """
        actions, _ = self.model.predict(np.asarray(obs), deterministic=not explore)
        return actions

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """The greedy policy's score of every candidate, ``(B, C)`` (higher = preferred).

        Q-values (DQN), mean quantiles (QR-DQN) or action log-probabilities (PPO, A2C), so that
        ``argmax`` is ``act(obs)`` and evaluation can compute ``eval/ndcg@k``.
        """
        policy = self.model.policy
        policy.set_training_mode(False)
        obs_tensor, vectorized = policy.obs_to_tensor(np.asarray(obs))
        with torch.no_grad():
            values = self._scores(obs_tensor).cpu().numpy()
        return values if vectorized else values[0]

    def _scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.policy.get_distribution(obs).distribution.logits

    def save(self, path: str | Path, include_replay: bool | None = None) -> None:
        """SB3's zip (with our hyperparameters inside), written atomically at exactly ``path``.

        With ``include_replay`` (default: the ``save_replay_buffer`` hyperparameter) an off-policy
        agent's replay buffer goes next to it, as ``<path>.replay_buffer.pkl`` (SB3's format);
        ``load`` restores it when present.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            self.model.save(f)
        tmp.replace(path)
        if include_replay is None:
            include_replay = bool(self._hparams.get("save_replay_buffer", False))
        buffer_path = self._replay_buffer_path(path)
        if include_replay and getattr(self.model, "replay_buffer", None) is not None:
            buffer_tmp = buffer_path.with_name(buffer_path.name + ".tmp")
            self.model.save_replay_buffer(buffer_tmp)
            buffer_tmp.replace(buffer_path)
        else:
            buffer_path.unlink(missing_ok=True)  # never pair this zip with an older buffer

    @staticmethod
    def _replay_buffer_path(path: Path) -> Path:
        return path.with_name(path.name + ".replay_buffer.pkl")

    @classmethod
    def load(
        cls, path: str | Path, env: Any = None, *, trust_checkpoints: bool = False
    ) -> SB3Agent:
        """Rebuild from an SB3 zip written by :meth:`save`; ``env`` is needed only to train on.

        SB3's zip (and its replay-buffer file) hold cloudpickled objects that run code when read,
        by SB3's design (``stable_baselines3.common.save_util.json_to_data``): unlike our own
        agents' checkpoints, they load only with ``trust_checkpoints=True`` — pass it for files you
        wrote or trust (``recsim-train resume=<dir> trust_checkpoints=true``). Nothing in the
        file is unpickled before that check."""
        path = Path(path)
        if not trust_checkpoints:
            raise ValueError(
                f"{path} is an SB3 checkpoint: SB3 stores it with cloudpickle, which runs code "
                "when loaded, so it loads only with trust_checkpoints=true "
                "(recsim-train resume=<dir> trust_checkpoints=true, or "
                f"{cls.__name__}.load(path, trust_checkpoints=True)) if you trust where it came from"
            )
        try:
            with zipfile.ZipFile(path) as archive:
                raw = json.loads(archive.read("data").decode())
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path} is not an SB3 zip ({type(exc).__name__}: {exc})") from exc
        log.warning(
            "loading %s: SB3 checkpoints are cloudpickle: load only from trusted dirs", path
        )
        plain = raw.get("recsim_hparams") if isinstance(raw, dict) else None
        if isinstance(plain, dict) and ":serialized:" not in plain:
            cls._check_saved(path, plain)  # before anything is unpickled
        with zipfile.ZipFile(path) as archive:
            data = json_to_data(archive.read("data").decode())  # trusted: may unpickle
        saved = cls._check_saved(path, data.get("recsim_hparams"))
        agent = cls.__new__(cls)
        agent._hparams = hp.validate(
            cls.__name__, cls.all_params(), {k: v for k, v in saved.items() if k != "agent"}
        )
        agent._check_action_space(_action_space(env))
        torch.set_num_threads(agent._hparams["torch_threads"])
        agent.env = env
        agent.vec_env = as_sb3_env(env)
        agent._lr_schedule, agent._eps_schedule = agent._make_schedules(agent._hparams)
        model = cls.algorithm.load(path, env=agent.vec_env, device=agent._hparams["device"])
        # SB3's load re-seeds the action space (DQN's exploration draws from it) with the initial
        # seed; give it back the state it had when saved, so a resumed run continues the stream.
        saved_space = data.get("action_space")
        saved_rng = getattr(saved_space, "_np_random", None)
        if saved_rng is not None:
            model.action_space.np_random.bit_generator.state = saved_rng.bit_generator.state
        agent._attach(model)
        buffer_path = cls._replay_buffer_path(path)
        if buffer_path.exists() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(buffer_path)
        return agent

    @classmethod
    def _check_saved(cls, path: Path, saved: Any) -> dict[str, Any]:
        """``recsim_hparams`` of a zip written by this class's :meth:`save`, or a ValueError."""
        if not isinstance(saved, dict):
            raise ValueError(
                f"{path} was not written by {cls.__qualname__}.save (it has no recsim_hparams); "
                f"load a plain SB3 zip with {cls.algorithm.__name__}.load"
            )
        if saved.get("agent") != cls.__qualname__:
            raise ValueError(
                f"{path} holds a {saved.get('agent')} checkpoint, not {cls.__qualname__}"
            )
        return saved

    def continue_stream(self, obs: np.ndarray, info: Info | None) -> None:
        """Continue the next ``learn`` from ``obs`` (:class:`agents.base.ContinuesStream`).

        After ``load`` SB3 would reset the env at the next ``learn``; handing back the observation
        of the checkpoint (with the env's own state restored) continues the same users instead.
        """
        self.model._last_obs = obs
        env = self.model.get_env()
        if obs is not None and env is not None:
            # SB3's load also queued its seed for the env's next reset (which would re-create the
            # world); with an observation to continue from, that reset is not going to happen.
            env.unwrapped._reset_seeds()
        recsim = find_recsim_vec_env(env)
        if recsim is not None:
            recsim.last_info = info

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_timesteps={self.num_timesteps}, {self._hparams})"
