"""Deep Q-learning for recommendation: Double DQN, dueling head, n-step returns, batched acting.

The loop is ``OnlineAgent.learn`` (act → env.step → observe → update). Semantics follow SB3's
``DQN`` so that the two are comparable number for number:

* steps are user-steps (a vector step over ``B`` users counts ``B``): ``learning_starts``,
  ``target_update_interval``, ``total_steps`` and the schedules count them;
* ``train_freq`` counts vector steps (calls to ``env.step``), as SB3 counts them with a VecEnv:
  every ``train_freq`` vector steps the agent does ``gradient_steps`` gradient steps
  (``-1``: one per user-step collected since the last round), so the update-to-data ratio is
  ``gradient_steps / (train_freq · B)``. A round draws all its minibatches from the replay at
  once and moves them to the device in one transfer (the replay does not change within a round);
  its metrics reach the host in one sync;
* until ``learning_starts`` user-steps have been observed, exploring actions are uniform random;
  training starts once more than ``learning_starts`` user-steps were observed and the replay holds
  at least ``batch_size`` complete n-step windows;
* the target network is updated every ``target_update_interval`` user-steps, rounded down to whole
  vector steps and at least one (before that step's training round): a hard copy when ``tau = 1``,
  Polyak averaging ``θ' ← τ·θ + (1 − τ)·θ'`` otherwise. The default (``1``, ``tau = 0.005``) is
  Polyak after every vector step, i.e. every training round: the target lags ≈ 1/τ = 200 rounds
  whatever ``B`` (:attr:`DQNAgent.target_update_gradient_steps` gives the lag in gradient steps).
  A hard copy counted in user-steps comes more often in rounds as ``B`` grows: scale it with ``B``.

Slate mode (``MultiDiscrete([C] * k)`` actions) uses a documented approximation: the value of a
slate is the mean of its items' Q-values, so acting is the top-k candidates by Q (ordered, best
first), exploration picks k distinct random candidates, and the bootstrap value is the mean of the
top-k Q-values of the next observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import Info, reset_rows, user_steps
from agents.dqn.config import DQNConfig
from agents.dqn.replay import ReplayBuffer
from agents.qlearning.acting import (
    EnvSpec,
    greedy_actions,
    make_adam,
    random_actions,
    to_numpy,
    to_torch,
)
from agents.qlearning.learner import QLearner
from agents.qlearning.losses import (
    bootstrap_value,
    optimizer_step,
    td_loss,
    td_target,
    update_target,
)
from agents.qlearning.network import CandidateQNetwork, MlpQNetwork, build_q_network

CHECKPOINT_FORMAT = 2  # 2: the replay stores each observation once (format 1 cannot be read)


class DQNAgent(QLearner):
    """DQN over a recsim vector env; hyperparameters are :class:`DQNConfig` fields.

    Build with keyword hyperparameters (``DQNAgent(env, gamma=0.9, n_step=3)``, which is what
    ``hydra.utils.instantiate`` does) or with a ready ``config=DQNConfig(...)``.
    """

    config_class = DQNConfig
    config: DQNConfig

    def __init__(self, env: Any, config: DQNConfig | None = None, **hyperparameters: Any) -> None:
        super().__init__(env, config, **hyperparameters)
        cfg = self.config

        def build() -> CandidateQNetwork | MlpQNetwork:
            return build_q_network(cfg.network, self.layout, cfg.hidden_sizes, cfg.dueling)

        self.q_net, self.target_net = self._init_networks(lambda: (build(), build()))
        self.q_net.to(self.device)
        self.target_net.to(self.device)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self._params = list(self.q_net.parameters())
        self._target_params = list(self.target_net.parameters())
        if cfg.cuda_graphs and self.device.type != "cuda":
            raise ValueError(
                f"DQNConfig.cuda_graphs=True is invalid with device={cfg.device!r} "
                f"(resolved to {self.device}): allowed only on a CUDA device"
            )
        self.optimizer = make_adam(self._params, cfg.lr, capturable=cfg.cuda_graphs)
        self._step = self._gradient_step
        if cfg.cuda_graphs:  # experimental, unmeasured: see agents/dqn/cuda_graph.py
            from agents.dqn.cuda_graph import GraphedStep

            self._step = GraphedStep(self._gradient_step, self._optimizer_state_key)

        action_shape = (self.slate_size,) if self.slate_size else ()
        self.replay = ReplayBuffer(
            cfg.buffer_size, self.num_envs, self.layout.size, action_shape, cfg.n_step, cfg.gamma
        )
        # schedule positions and counters (all checkpointed)
        self.observed_steps = 0  # user-steps stored in replay (the schedules' position)
        self.vector_steps = 0  # update() calls
        self.gradient_steps_done = 0
        self.schedule_horizon: int | None = cfg.total_steps
        self._target_every = max(cfg.target_update_interval // self.num_envs, 1)

    @property
    def target_update_gradient_steps(self) -> int:
        """Gradient steps between two target updates online (at least 1): the target's lag in
        *updates*, which is what keeps TD learning stable. Offline pre-training uses the same lag
        (:func:`agents.offline.pretrain.pretrain_dqn`), so both phases propagate value alike."""
        cfg = self.config
        per_round = cfg.gradient_steps if cfg.gradient_steps > 0 else cfg.train_freq * self.num_envs
        return max(1, round(self._target_every * per_round / cfg.train_freq))

    # ------------------------------------------------------------------ acting
    def _greedy(self, q: torch.Tensor) -> torch.Tensor:
        return greedy_actions(q, self.slate_size)

    def _random_actions(self, n: int) -> np.ndarray:
        return random_actions(self.rng, n, self.num_candidates, self.slate_size)

    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        """Greedy (``explore=False``, deterministic) or ε-greedy actions for a batch of users.

        One forward pass scores all ``B × C`` candidates. A 1-D ``obs`` gets an unbatched action.
        """
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        obs2d = obs.reshape(1, -1) if single else obs
        n = obs2d.shape[0]
        if explore and self.observed_steps < self.config.learning_starts:
            actions = self._random_actions(n)  # warm-up: uniform (as SB3), no forward pass
        else:
            q = self._score_all(torch.from_numpy(obs2d).to(self.device))
            actions = self._greedy(q).cpu().numpy()
            if explore:
                eps = self.epsilon
                explore_mask = self.rng.random(n) < eps
                random_actions = self._random_actions(n)
                actions[explore_mask] = random_actions[explore_mask]
        return actions[0] if single else actions

    # ------------------------------------------------------------------ learning
    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: Info,
    ) -> None:
        skip = reset_rows(info)  # NEXT_STEP reset steps: stored (rows stay aligned), never sampled
        self.replay.add(obs, actions, rewards, next_obs, terminated, truncated, skip=skip)
        self.observed_steps += user_steps(info, self.num_envs)
        self._observed(rewards if skip is None else np.asarray(rewards)[~skip])

    def _observed(self, rewards: np.ndarray) -> None:
        """Called after each stored vector step (the adaptive DQN feeds its detector here)."""

    def update(self) -> dict[str, float]:
        """Target update and training round when due; metrics only when it trained."""
        cfg = self.config
        self.vector_steps += 1
        if self.vector_steps % self._target_every == 0:
            self._update_target()
        if (
            self.vector_steps % cfg.train_freq != 0
            or self.observed_steps <= cfg.learning_starts
            or self.replay.sampleable < cfg.batch_size
        ):
            return {}
        n_steps = cfg.gradient_steps if cfg.gradient_steps > 0 else cfg.train_freq * self.num_envs
        lr = self.learning_rate
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):  # capturable Adam (CUDA graphs)
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        # One draw and one host→device transfer for the whole round (the replay does not change
        # within it), then each gradient step takes its slice: no per-step sampling overhead.
        batch = self._round_batch(n_steps * cfg.batch_size)
        stats = torch.zeros(2, device=self.device)  # loss, mean Q: summed on device, no syncs
        for k in range(n_steps):
            part = slice(k * cfg.batch_size, (k + 1) * cfg.batch_size)
            stats += self._step(*(x[part] for x in batch))
        self.gradient_steps_done += n_steps
        loss_sum, q_sum = stats.tolist()  # the round's only device→host sync
        return {
            "train/loss": loss_sum / n_steps,
            "train/epsilon": self.epsilon,
            "train/lr": lr,
            "train/q_mean": q_sum / n_steps,
        }

    def _round_batch(self, size: int) -> tuple[torch.Tensor, ...]:
        """``size`` transitions from the replay as device tensors: obs, actions, returns,
        discounts, terminated, next_obs."""
        batch = self.replay.sample(size, self.rng)
        arrays = (batch.obs, batch.actions, batch.returns, batch.discounts, batch.terminated,
                  batch.next_obs)  # fmt: skip
        return tuple(torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays)

    def _gradient_step(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        returns: torch.Tensor,
        discounts: torch.Tensor,
        terminated: torch.Tensor,
        next_obs: torch.Tensor,
    ) -> torch.Tensor:
        """One TD update on a minibatch; returns ``[loss, mean Q]`` (detached, on device)."""
        cfg = self.config
        next_value = bootstrap_value(
            self.q_net, self.target_net, next_obs, double=cfg.double, slate_size=self.slate_size
        )
        target = td_target(returns, discounts, terminated, next_value)
        q_taken = self.q_net.q_of(obs, actions).mean(dim=1)  # (b, 1) or slate (b, k)
        loss = td_loss(q_taken, target, cfg.loss)
        optimizer_step(self.optimizer, self._params, loss, cfg.max_grad_norm)
        return torch.stack([loss.detach(), q_taken.detach().mean()])

    def _optimizer_state_key(self) -> tuple[int, ...]:
        """Identity of the optimiser's state tensors (a captured CUDA graph is tied to them)."""
        state = self.optimizer.state
        return tuple(id(state[p]["exp_avg"]) if p in state else 0 for p in self._params)

    def _update_target(self) -> None:
        update_target(self._target_params, self._params, self.config.tau)

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_replay: bool = False) -> dict[str, Any]:
        """Everything to continue exactly: networks, optimiser, counters (schedule positions),
        numpy + torch RNG states, the last observation, optionally the replay buffer. Only
        tensors and plain Python types, so that ``torch.load(weights_only=True)`` reads it."""
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "class": type(self).__qualname__,
            "config": self.config.to_dict(),
            "env_spec": EnvSpec.state(self.layout, self.slate_size, self.num_envs),
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": {
                "num_timesteps": self.num_timesteps,
                "observed_steps": self.observed_steps,
                "vector_steps": self.vector_steps,
                "gradient_steps_done": self.gradient_steps_done,
                "schedule_horizon": self.schedule_horizon,
            },
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "last_obs": None if self._last_obs is None else torch.from_numpy(self._last_obs.copy()),
            "replay": to_torch(self.replay.state_dict()) if include_replay else None,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"unsupported DQN checkpoint format {state.get('format')!r} (this version reads "
                f"{CHECKPOINT_FORMAT}; format 1 was written before the replay stored each "
                f"observation once): start a new run"
            )
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.config.cuda_graphs:  # a checkpoint may hold a plain float rate
            for group in self.optimizer.param_groups:
                group["lr"] = torch.as_tensor(group["lr"], device=self.device).float()
        counters = state["counters"]
        self.num_timesteps = int(counters["num_timesteps"])
        self.observed_steps = int(counters["observed_steps"])
        self.vector_steps = int(counters["vector_steps"])
        self.gradient_steps_done = int(counters["gradient_steps_done"])
        horizon = counters["schedule_horizon"]
        self.schedule_horizon = None if horizon is None else int(horizon)
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if state["last_obs"] is not None:
            self._last_obs = state["last_obs"].numpy().copy()
            self._last_info = {}
        if state["replay"] is not None:
            self.replay.load_state_dict(to_numpy(state["replay"]))

    def save(self, path: str | Path, include_replay: bool = False) -> None:
        """Atomic ``torch.save`` of :meth:`state_dict` (the env is checkpointed by the runner)."""
        self._write(path, self.state_dict(include_replay=include_replay))

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray | None:
        """Q-values clipped to [0, 1] when they estimate the click probability: the env reward is
        the click and ``gamma == 0`` (with ``gamma > 0`` Q is a discounted return, not a
        probability). ``None`` otherwise (see :mod:`agents.click_model`)."""
        from agents.click_model import CLICK, as_click_probability, env_reward_kind

        if self.config.gamma != 0.0 or env_reward_kind(self.env) != CLICK:
            return None
        return as_click_probability(self.q_values(obs))
