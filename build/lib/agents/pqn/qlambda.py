"""Q(λ) targets over one rollout of a vector env, computed backwards in time.

For step ``t`` of user stream ``e`` (arrays ``(T, B)``), with ``V(s) = max_a Q(s, a)`` under the
network that collected the rollout (in slate mode the mean of the top-k Q-values)::

    G_t = r_t + γ·(1 − terminated_t)·[ V_t' + λ·c_t·(G_{t+1} − V_t') ]

where ``V_t'`` is the value of the true next observation of step ``t`` and ``c_t = 1`` when the
λ-return may continue into step ``t + 1``: the session did not end at ``t`` (with same-step
autoreset, row ``t + 1`` then belongs to the *next* user) and ``t`` is not the rollout's last step.
So ``λ = 0`` is one-step Q-learning, ``λ = 1`` the discounted Monte Carlo return until the session
or the rollout ends, bootstrapped there. A *terminated* session never bootstraps; a *truncated* one
bootstraps from its true last observation (``V_t'`` is computed on ``info["final_obs"]``), since the
user's future was cut by the time limit, not ended.

This is Peng's Q(λ) as PQN uses it (Gallici et al., 2025): no trace cutting at exploratory actions.
"""

from __future__ import annotations

import torch


def q_lambda_targets(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """``G`` of shape ``(T, B)`` from ``(T, B)`` rewards, termination and truncation flags and
    ``next_values`` (``V`` of each step's true next observation; ignored where terminated).

    One vectorised step per time step (no per-user loops), all on the inputs' device.
    """
    steps = rewards.shape[0]
    not_terminated = 1.0 - terminated.to(rewards.dtype)
    ended = torch.logical_or(terminated.bool(), truncated.bool())
    keep = td_lambda * (1.0 - ended.to(rewards.dtype))  # λ·c_t, before the last-step rule
    targets = torch.empty_like(rewards)
    following = next_values[-1]  # G_{t+1}; unused at the last step (c = 0 there)
    for t in range(steps - 1, -1, -1):
        value = next_values[t]
        blend = value if t == steps - 1 else value + keep[t] * (following - value)
        following = rewards[t] + gamma * not_terminated[t] * blend
        targets[t] = following
    return targets
