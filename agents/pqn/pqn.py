"""Parallelised Q-learning (PQN; Gallici et al., "Simplifying Deep Temporal Difference Learning",
ICLR 2025) over the ``B`` users of a natively batched env.

No replay buffer and no target network: the agent acts ε-greedily for ``rollout_steps`` (``T``)
vector steps, keeping each step's observations, actions, rewards, end flags and the greedy values
``V(s_t)`` of the forward pass it acted with; then it computes Q(λ) targets backwards over the
rollout (:mod:`agents.pqn.qlambda`) and takes ``num_epochs`` passes of minibatch regression of
``Q(s_t, a_t)`` on them; then the rollout is dropped. A LayerNorm network keeps this stable without
a target network. Every update trains on what today's users did, which suits drifting
preferences, and the only per-user work is the forward pass the agent needs to act anyway, so it
scales with ``B`` (one rollout of ``T·B`` transitions is a few large minibatches).

Driven by ``OnlineAgent.learn`` (act → env.step → observe → update): ``act`` remembers the
values of its forward pass, ``observe`` stores the step (and values the true last observation of
sessions truncated at this step, from ``info["final_obs"]``: with same-step autoreset the next row
is already the next user), ``update`` trains when a rollout is complete.

Semantics shared with our DQN: steps are user-steps; ε decays linearly from ``epsilon_start`` to
``epsilon_end`` over ``exploration_fraction · total_steps``; the learning rate is constant or
linear to ``lr_end``; slate mode (``MultiDiscrete([C] * k)``) values a slate as the mean of its
items' Q-values (:mod:`agents.qlearning.acting`). Checkpoints hold the network, optimiser, counters, RNG
state and the partial rollout, as tensors and plain data (``torch.load(weights_only=True)``), so
a resumed run continues exactly like an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import Info, reset_rows, user_steps
from agents.pqn.config import PQNConfig
from agents.pqn.qlambda import q_lambda_targets
from agents.qlearning.acting import (
    EnvSpec,
    greedy_actions,
    make_adam,
    random_actions,
    state_values,
)
from agents.qlearning.learner import QLearner
from agents.qlearning.losses import optimizer_step, td_loss
from agents.qlearning.network import CandidateQNetwork, build_q_network
from recsim_env.observation import ObsLayout

CHECKPOINT_FORMAT = 1
_ROLLOUT = ("items", "user", "obs", "actions", "rewards", "terminated", "truncated", "values",
            "next_values")  # fmt: skip


class Rollout:
    """``T`` vector steps of ``B`` users, preallocated on the agent's device.

    With the per-candidate network only what the taken actions' Q-values depend on is kept: the
    chosen candidates' features ``items`` ``(T, B, m, item_dim)`` and the user features ``user``
    (about a tenth of the observation: less memory, and each minibatch gathers less). With the
    flat MLP the whole observation ``obs`` and the ``actions``. The other arrays are empty.
    """

    def __init__(
        self,
        steps: int,
        num_envs: int,
        layout: ObsLayout,
        slate_size: int,
        compact: bool,
        device: torch.device,
    ) -> None:
        shape = (steps, num_envs)
        self.steps = steps
        self.compact = compact
        m = max(slate_size, 1)
        action_shape = (*shape, slate_size) if slate_size else shape

        def zeros(full: tuple[int, ...], dtype: torch.dtype, keep: bool) -> torch.Tensor:
            return torch.zeros(full if keep else (steps, 0), dtype=dtype, device=device)

        self.items = zeros((*shape, m, layout.item_dim), torch.float32, compact)
        self.user = zeros((*shape, layout.user_dim), torch.float32, compact)
        self.obs = zeros((*shape, layout.size), torch.float32, not compact)
        self.actions = zeros(action_shape, torch.int64, not compact)
        self.rewards = torch.zeros(shape, dtype=torch.float32, device=device)
        self.terminated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.truncated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.values = torch.zeros(shape, dtype=torch.float32, device=device)  # V(s_t)
        self.next_values = torch.zeros(shape, dtype=torch.float32, device=device)
        self.skip = torch.zeros(shape, dtype=torch.bool, device=device)  # NEXT_STEP reset steps
        self.any_skip = False
        self.t = 0  # rows filled

    @property
    def full(self) -> bool:
        return self.t == self.steps

    def state_dict(self) -> dict[str, Any]:
        """The filled rows (CPU tensors) and their count."""
        state: dict[str, Any] = {
            name: getattr(self, name)[: self.t].cpu().clone() for name in _ROLLOUT
        }  # clone: on CPU, a slice would save its whole storage
        state["t"] = self.t
        if self.any_skip:  # only then: SAME_STEP checkpoints are unchanged
            state["skip"] = self.skip[: self.t].cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        t = int(state["t"])
        if t > self.steps:
            raise ValueError(
                f"checkpoint rollout has {t} steps, more than rollout_steps={self.steps}"
            )
        for name in _ROLLOUT:
            getattr(self, name)[:t] = state[name].to(getattr(self, name).device)
        self.skip.zero_()
        if "skip" in state:
            self.skip[:t] = state["skip"].to(self.skip.device)
        self.any_skip = bool(self.skip.any())
        self.t = t


class PQNAgent(QLearner):
    """PQN over a recsim vector env; hyperparameters are :class:`PQNConfig` fields.

    Build with keyword hyperparameters (``PQNAgent(env, td_lambda=0.8)``, which is what
    ``hydra.utils.instantiate`` does) or with a ready ``config=PQNConfig(...)``.
    """

    config_class = PQNConfig
    config: PQNConfig

    def __init__(self, env: Any, config: PQNConfig | None = None, **hyperparameters: Any) -> None:
        super().__init__(env, config, **hyperparameters)
        cfg = self.config
        self.q_net = self._init_networks(
            lambda: build_q_network(
                cfg.network, self.layout, cfg.hidden_sizes, cfg.dueling, cfg.layer_norm
            )
        )
        self.q_net.to(self.device)
        self._params = list(self.q_net.parameters())
        self.optimizer = make_adam(self._params, cfg.lr)
        compact = isinstance(self.q_net, CandidateQNetwork) and not self.q_net.dueling
        self.rollout = Rollout(
            cfg.rollout_steps, self.num_envs, self.layout, self.slate_size, compact, self.device
        )
        self.observed_steps = 0  # user-steps observed (the schedules' position)
        self.updates = 0  # rollouts trained on
        self.gradient_steps_done = 0
        self.schedule_horizon: int | None = cfg.total_steps
        # the forward pass of the last exploring act(): (its obs array, obs on device, V(s))
        self._acted: tuple[np.ndarray, torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ acting
    def _to_device(self, obs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)).to(self.device)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Greedy ranking scores of the candidates (the Q-values), for ``eval/ndcg@k``."""
        return self.q_values(obs)

    def act(
        self, obs: np.ndarray, *, explore: bool = False, info: Info | None = None
    ) -> np.ndarray:
        """Greedy (``explore=False``, deterministic) or ε-greedy actions for a batch of users.

        One forward pass scores all ``B × C`` candidates. A 1-D ``obs`` gets an unbatched action.
        """
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim == 1
        obs2d = array.reshape(1, -1) if single else array
        n = obs2d.shape[0]
        obs_t = self._to_device(obs2d)
        q = self._score_all(obs_t)
        actions = greedy_actions(q, self.slate_size).cpu().numpy()
        if explore and not single and n == self.num_envs:
            self._acted = (obs, obs_t, state_values(q, self.slate_size))
        if explore:
            explore_mask = self.rng.random(n) < self.epsilon
            random = random_actions(self.rng, n, self.num_candidates, self.slate_size)
            actions[explore_mask] = random[explore_mask]
        return actions[0] if single else actions

    def _values(self, obs: torch.Tensor) -> torch.Tensor:
        return state_values(self._score_all(obs), self.slate_size)

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
        """Store one vector step (``next_obs`` holds the true last observation where a session
        ended). Of ``info`` only the NEXT_STEP reset-step rows are read (ground truth stays out)."""
        ro, dev = self.rollout, self.device
        t = ro.t
        acted, self._acted = self._acted, None
        if acted is not None and acted[0] is obs:  # the forward pass act() already made
            obs_t, values = acted[1], acted[2]
        else:
            obs_t = self._to_device(obs)
            values = self._values(obs_t)
        actions_t = torch.from_numpy(np.asarray(actions, dtype=np.int64)).to(dev)
        if ro.compact:
            ro.items[t], ro.user[t] = self.q_net.chosen(obs_t, actions_t)  # type: ignore[operator]
        else:
            ro.obs[t], ro.actions[t] = obs_t, actions_t
        ro.values[t] = values
        ro.rewards[t] = torch.from_numpy(np.asarray(rewards, dtype=np.float32)).to(dev)
        if self.config.reward_scale != 1.0:  # only then: unscaled runs stay bit-identical
            ro.rewards[t] *= self.config.reward_scale
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        ro.terminated[t] = torch.from_numpy(terminated).to(dev)
        ro.truncated[t] = torch.from_numpy(truncated).to(dev)
        # V of the true next observation where the next row cannot supply it: every user at the
        # rollout's last step, users truncated here (their next row is a new user's first obs)
        if t == ro.steps - 1:
            ro.next_values[t] = self._values(self._to_device(next_obs))
        else:
            ro.next_values[t] = 0.0
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:
                rows = torch.from_numpy(cut).to(dev)
                ro.next_values[t, rows] = self._values(self._to_device(next_obs[cut]))
        skip = reset_rows(info)  # NEXT_STEP reset steps: kept in place, left out of the loss
        if skip is not None or ro.any_skip:
            ro.skip[t] = torch.from_numpy(np.zeros(self.num_envs, bool) if skip is None else skip)
            ro.any_skip = ro.any_skip or skip is not None
        ro.t = t + 1
        self.observed_steps += user_steps(info, self.num_envs)

    def update(self) -> dict[str, float]:
        """Train on the rollout when it is complete; metrics only then."""
        if not self.rollout.full:
            return {}
        cfg = self.config
        ro = self.rollout
        targets = self.rollout_targets().reshape(-1)
        if ro.compact:  # the chosen candidates' features and the user's
            inputs = (ro.items.flatten(0, 1), ro.user.flatten(0, 1))
        else:  # the observation and the action
            inputs = (ro.obs.flatten(0, 1), ro.actions.flatten(0, 1))
        lr = self.learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = targets.shape[0]
        chunks = cfg.minibatches(n)  # every transition is used in every epoch
        stats = torch.zeros(2, device=self.device)
        for _ in range(cfg.num_epochs):
            order = torch.from_numpy(self.rng.permutation(n)).to(self.device)
            if ro.any_skip:
                order = order[~ro.skip.reshape(-1)[order]]
            for index in torch.tensor_split(order, chunks):
                stats += self._gradient_step(inputs[0][index], inputs[1][index], targets[index])
        steps = cfg.num_epochs * chunks
        self.gradient_steps_done += steps
        self.updates += 1
        ro.t = 0
        if ro.any_skip:
            ro.skip.zero_()
            ro.any_skip = False
        loss_sum, q_sum = stats.tolist()  # the update's only device→host sync
        return {
            "train/loss": loss_sum / steps,
            "train/epsilon": self.epsilon,
            "train/lr": lr,
            "train/q_mean": q_sum / steps,
        }

    def rollout_targets(self) -> torch.Tensor:
        """Q(λ) targets ``(T, B)`` of the complete rollout, under the network that collected it."""
        ro, cfg = self.rollout, self.config
        # the next row supplies V(s_{t+1}) where the session went on
        ended = torch.logical_or(ro.terminated[:-1], ro.truncated[:-1])
        ro.next_values[:-1] = torch.where(ended, ro.next_values[:-1], ro.values[1:])
        return q_lambda_targets(
            ro.rewards, ro.terminated, ro.truncated, ro.next_values, cfg.gamma, cfg.td_lambda
        )

    def _gradient_step(
        self, first: torch.Tensor, second: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Regress ``Q(s, a)`` on its Q(λ) target; returns ``[loss, mean Q]`` (on device).
        ``first, second``: chosen items and user features, or observations and actions."""
        if self.rollout.compact:
            q = self.q_net.score_chosen(first, second)  # type: ignore[operator]
        else:
            q = self.q_net.q_of(first, second)
        q_taken = q.mean(dim=1)  # (b, 1), or the slate's mean
        loss = td_loss(q_taken, targets, self.config.loss)
        optimizer_step(self.optimizer, self._params, loss, self.config.max_grad_norm)
        return torch.stack([loss.detach(), q_taken.detach().mean()])

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: network, optimiser, counters (schedule positions), the
        agent's RNG, the partial rollout and the last observation. Tensors and plain Python types
        only, so that ``torch.load(weights_only=True)`` reads it (no pickled objects)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "class": type(self).__qualname__,
            "config": self.config.to_dict(),
            "env_spec": EnvSpec.state(self.layout, self.slate_size, self.num_envs),
            "q_net": self.q_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": {
                "num_timesteps": self.num_timesteps,
                "observed_steps": self.observed_steps,
                "updates": self.updates,
                "gradient_steps_done": self.gradient_steps_done,
                "schedule_horizon": self.schedule_horizon,
            },
            "numpy_rng": self.rng.bit_generator.state,
            "rollout": self.rollout.state_dict(),
            "last_obs": None if self._last_obs is None else torch.from_numpy(self._last_obs.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"unsupported PQN checkpoint format {state.get('format')!r} (this version reads "
                f"{CHECKPOINT_FORMAT})"
            )
        self.q_net.load_state_dict(state["q_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        counters = state["counters"]
        self.num_timesteps = int(counters["num_timesteps"])
        self.observed_steps = int(counters["observed_steps"])
        self.updates = int(counters["updates"])
        self.gradient_steps_done = int(counters["gradient_steps_done"])
        horizon = counters["schedule_horizon"]
        self.schedule_horizon = None if horizon is None else int(horizon)
        self.rng.bit_generator.state = state["numpy_rng"]
        self.rollout.load_state_dict(state["rollout"])
        self._acted = None
        if state["last_obs"] is not None:
            self._last_obs = state["last_obs"].numpy().copy()
            self._last_info = {}

    def save(self, path: str | Path) -> None:
        """Atomic ``torch.save`` of :meth:`state_dict` (the env is checkpointed by the runner)."""
        self._write(path, self.state_dict())
