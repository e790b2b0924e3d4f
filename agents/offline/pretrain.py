"""Offline pre-training of :class:`agents.dqn.DQNAgent` on a :class:`LoggedDataset`.

Batch (fitted) Q-learning with the agent's *own* online network, target network and optimiser, so
that after :func:`pretrain_dqn` the same agent is deployed and keeps learning online with its normal
``learn`` (pretrain → fine-tune → serve):

    target  = Σ_{k<n} γᵏ r_{t+k} + γⁿ (1 − terminated) · Q_target(s_{t+n}, argmax_a Q(s_{t+n}, a))
    loss    = TD(Q(s_t, a_t), target)  +  α · mean(logsumexp_a Q(s_t, a) − Q(s_t, a_t))

(Double DQN target with the agent's ``gamma`` and ``n_step``; TD: the agent's ``loss``.) The
second term (``conservative_alpha = α > 0``) is the CQL(H) penalty of Kumar et al. (2020): it
pushes down the Q-values of candidates the behaviour policy did not take, so the greedy policy does
not chase over-estimated, never-logged actions (the failure of plain batch Q-learning when the data
covers few actions). Measured here: with the flat ``mlp`` Q-network (one output per slot) and
near-deterministic logs, plain batch Q-learning falls below the behaviour policy and CQL (α = 0.3)
beats both; with the default ``candidate`` network (one scorer shared by all candidates, which
generalises across items) plain batch Q-learning is already good and CQL only pulls the policy
towards the behaviour policy (lower value).

For the online phase build the agent with ``learning_starts=0`` (or small) and a low
``epsilon_start``: otherwise its first ``learning_starts`` user-steps are uniformly random and
throw the pre-training away. :func:`seed_replay` optionally puts the logged transitions into the
agent's replay so that its first online updates also replay them.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.dqn import DQNAgent
from agents.dqn.replay import ReplayBuffer
from agents.offline.dataset import LoggedDataset
from agents.qlearning.losses import (
    bootstrap_value,
    optimizer_step,
    td_loss,
    td_target,
    update_target,
)


def _check_compatible(agent: DQNAgent, dataset: LoggedDataset) -> None:
    if agent.slate_size:
        raise ValueError("offline pre-training supports single-item mode (Discrete actions) only")
    layout = dataset.layout
    if (layout.size, layout.num_candidates) != (agent.layout.size, agent.num_candidates):
        raise ValueError(
            f"dataset observations (size {layout.size}, {layout.num_candidates} candidates) do not "
            f"match the agent's (size {agent.layout.size}, {agent.num_candidates} candidates)"
        )


def _fill(buffer: ReplayBuffer, dataset: LoggedDataset, width: int, cut_last: bool) -> None:
    """Add the dataset to ``buffer`` as rows of ``width`` streams (time-major)."""
    names = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")
    if width == dataset.num_envs:
        arrays = {name: dataset.time_major(name) for name in names}
    else:  # only valid for 1-step targets: rows mix streams
        rows = len(dataset) // width
        arrays = {
            name: getattr(dataset, name)[: rows * width].reshape(
                rows, width, *getattr(dataset, name).shape[1:]
            )
            for name in names
        }
    n_rows = arrays["obs"].shape[0]
    for t in range(n_rows):
        truncated = arrays["truncated"][t]
        if cut_last and t == n_rows - 1:
            # the next row written after this one belongs to other users: end every n-step window
            # here (truncation: the target still bootstraps from the stored next observation)
            truncated = truncated | ~arrays["terminated"][t]
        buffer.add(
            arrays["obs"][t],
            arrays["actions"][t],
            arrays["rewards"][t],
            arrays["next_obs"][t],
            arrays["terminated"][t],
            truncated,
        )


def _check_seedable(agent: DQNAgent, dataset: LoggedDataset) -> None:
    _check_compatible(agent, dataset)
    width = agent.num_envs
    if dataset.num_envs != width and agent.config.n_step > 1:
        raise ValueError(
            f"dataset has {dataset.num_envs} user streams but the agent's replay {width}: with "
            f"n_step={agent.config.n_step} they must match (log with num_envs={width})"
        )


def seed_replay(agent: DQNAgent, dataset: LoggedDataset) -> int:
    """Write the logged transitions into ``agent.replay`` (oldest first; a dataset larger than the
    buffer keeps its newest part). Returns the number of transitions written.

    The dataset's streams become the replay's columns, so ``dataset.num_envs`` must equal the
    agent's ``num_envs`` — except with ``n_step = 1``, where every transition stands alone and the
    rows are re-cut to the agent's width (a remainder of fewer than ``num_envs`` transitions is
    dropped). The last logged row ends its n-step windows, so no window runs into online data.
    The agent's counters (``observed_steps``, schedules, ``learning_starts``) are not touched.
    """
    _check_seedable(agent, dataset)
    width = agent.num_envs
    _fill(agent.replay, dataset, width, cut_last=True)
    return (len(dataset) // width) * width


def pretrain_dqn(
    agent: DQNAgent,
    dataset: LoggedDataset,
    steps: int,
    conservative_alpha: float = 0.0,
    *,
    batch_size: int | None = None,
    lr: float | None = None,
    target_update_interval: int | None = None,
    seed_agent_replay: bool = False,
    seed: int | None = None,
) -> dict[str, float]:
    """``steps`` gradient steps of batch Q-learning of ``agent`` on ``dataset``.

    Uses the agent's networks, optimiser, ``gamma``, ``n_step``, ``double``, ``max_grad_norm`` and
    ``tau``; ``batch_size`` and ``lr`` default to the agent's. The target network is updated every
    ``target_update_interval`` gradient steps (hard copy, or Polyak with the agent's ``tau``) and
    synced with the online network at the end; ``None`` (default): as often, in gradient steps, as
    the agent updates it online (:attr:`DQNAgent.target_update_gradient_steps`: with the default
    Polyak target, after every gradient step), so pre-training propagates value as fine-tuning
    does. Minibatches are drawn with ``seed`` (``None``: from
    the agent's generator). ``seed_agent_replay`` also calls :func:`seed_replay`.

    Returns the means over the last 10 % of steps: ``pretrain/loss`` (total), ``pretrain/td_loss``,
    ``pretrain/cql_penalty`` (logsumexp − Q of the logged action, reported even when α = 0) and
    ``pretrain/q_mean``.
    """
    _check_compatible(agent, dataset)
    if seed_agent_replay:
        _check_seedable(agent, dataset)  # fail before training, not after
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if not (np.isfinite(conservative_alpha) and conservative_alpha >= 0):
        raise ValueError(
            f"conservative_alpha must be a finite number >= 0, got {conservative_alpha}"
        )
    if target_update_interval is None:
        target_update_interval = agent.target_update_gradient_steps
    if int(target_update_interval) != target_update_interval or target_update_interval < 1:
        raise ValueError(
            f"target_update_interval must be a positive integer, got {target_update_interval}"
        )
    cfg = agent.config
    batch_size = int(batch_size or cfg.batch_size)
    rng = agent.rng if seed is None else np.random.default_rng(seed)
    if dataset.num_vector_steps < cfg.n_step:
        raise ValueError(
            f"the dataset has {dataset.num_vector_steps} vector steps, fewer than "
            f"n_step={cfg.n_step}"
        )
    buffer = ReplayBuffer(
        len(dataset), dataset.num_envs, dataset.layout.size, (), cfg.n_step, cfg.gamma
    )
    _fill(buffer, dataset, dataset.num_envs, cut_last=False)
    for group in agent.optimizer.param_groups:
        group["lr"] = float(lr if lr is not None else cfg.lr)

    q_net, target_net, device = agent.q_net, agent.target_net, agent.device
    params = list(q_net.parameters())
    target_params = list(target_net.parameters())
    alpha = float(conservative_alpha)
    tail = max(1, int(steps) // 10)
    sums = torch.zeros(4, device=device)  # loss, td, penalty, q over the tail
    for step in range(int(steps)):
        batch = buffer.sample(batch_size, rng)
        obs = torch.from_numpy(batch.obs).to(device)
        actions = torch.from_numpy(batch.actions).to(device)
        next_obs = torch.from_numpy(batch.next_obs).to(device)
        next_value = bootstrap_value(q_net, target_net, next_obs, double=cfg.double)
        target = td_target(
            torch.from_numpy(batch.returns).to(device),
            torch.from_numpy(batch.discounts).to(device),
            torch.from_numpy(batch.terminated).to(device),
            next_value,
        )
        q_all = q_net(obs)  # (b, C): the penalty needs every candidate
        q_taken = q_all.gather(1, actions.unsqueeze(1)).squeeze(1)
        td = td_loss(q_taken, target, cfg.loss)
        penalty = (torch.logsumexp(q_all, dim=1) - q_taken).mean()
        loss = td + alpha * penalty if alpha > 0 else td
        optimizer_step(agent.optimizer, params, loss, cfg.max_grad_norm)
        if (step + 1) % int(target_update_interval) == 0:
            update_target(target_params, params, cfg.tau)
        if step >= int(steps) - tail:
            sums += torch.stack(
                [loss.detach(), td.detach(), penalty.detach(), q_taken.detach().mean()]
            )
    update_target(target_params, params, 1.0)
    if seed_agent_replay:
        seed_replay(agent, dataset)
    loss_m, td_m, pen_m, q_m = (sums / tail).tolist()
    return {
        "pretrain/loss": loss_m,
        "pretrain/td_loss": td_m,
        "pretrain/cql_penalty": pen_m,
        "pretrain/q_mean": q_m,
        "pretrain/steps": float(steps),
    }
