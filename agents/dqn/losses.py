"""The temporal-difference update shared by online DQN (``dqn.py``) and offline pre-training
(``agents/offline/pretrain.py``): one definition of the target, the loss, the optimiser step and the
target-network update, so that a model pre-trained offline is trained by exactly the rule that
fine-tunes it online.

    target = returns + discounts · (1 − terminated) · V(next_obs)
    V(s')  = Q_target(s', argmax_a Q(s', a))      (Double DQN)
           = max_a Q_target(s', a)                (plain DQN)

``returns`` is the discounted reward sum over the (n-step) window, ``discounts`` the ``γ^k`` after
it and ``terminated`` 1 where the window ended in a real termination (a truncated session still
bootstraps from its true last observation). In slate mode (``slate_size = k > 0``) the value of a
slate is the mean of its items' Q-values, so ``V(s')`` is the mean of the top-k Q-values (the
online net picks the k items under Double DQN, the target net evaluates them).

All functions take and return tensors on the networks' device; none synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def bootstrap_value(
    online: nn.Module,
    target: nn.Module,
    next_obs: torch.Tensor,
    *,
    double: bool = True,
    slate_size: int = 0,
) -> torch.Tensor:
    """``V(next_obs)``, shape ``(b,)``: see the module doc. Both networks expose ``forward(obs) →
    (b, C)`` and ``q_of(obs, actions) → (b, m)`` (:mod:`agents.dqn.network`)."""
    if double:  # the online net picks, the target net evaluates only what it picked
        q_next = online(next_obs)
        picked = torch.topk(q_next, slate_size, dim=1).indices if slate_size else q_next.argmax(1)
        return target.q_of(next_obs, picked).mean(dim=1)
    q_next = target(next_obs)
    if slate_size:
        return torch.topk(q_next, slate_size, dim=1).values.mean(dim=1)
    return q_next.max(dim=1).values


def td_target(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    terminated: torch.Tensor,
    next_value: torch.Tensor,
) -> torch.Tensor:
    """``returns + discounts · (1 − terminated) · next_value`` (all ``(b,)``; ``terminated`` as
    0/1 floats)."""
    return returns + discounts * (1.0 - terminated) * next_value


def td_loss(q_taken: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Huber loss (δ = 1, mean over the batch): quadratic near the target, linear far from it, so
    one badly wrong bootstrap does not blow up the gradient."""
    return F.smooth_l1_loss(q_taken, target)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.Tensor],
    loss: torch.Tensor,
    max_grad_norm: float | None,
) -> None:
    """Backward, clip the global gradient norm to ``max_grad_norm`` (``None``: no clipping), step.

    Gradients are reset by setting them to ``None`` (what ``zero_grad(set_to_none=True)`` does,
    without its per-call overhead)."""
    for param in params:
        param.grad = None
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()


@torch.no_grad()
def update_target(
    target_params: Sequence[torch.Tensor], online_params: Sequence[torch.Tensor], tau: float
) -> None:
    """Hard copy (``tau = 1``) or Polyak averaging ``θ' ← τ·θ + (1 − τ)·θ'``."""
    if tau == 1.0:
        torch._foreach_copy_(list(target_params), list(online_params))
    else:
        torch._foreach_lerp_(list(target_params), list(online_params), tau)
