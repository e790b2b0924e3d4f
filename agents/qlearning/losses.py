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

from agents.qlearning.config import TD_LOSSES


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
    (b, C)`` and ``q_of(obs, actions) → (b, m)`` (:mod:`agents.qlearning.network`)."""
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


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: str = "huber") -> torch.Tensor:
    """Mean over the batch of ``huber`` (δ = 1: quadratic near the target, linear far from it, so
    one badly wrong bootstrap does not blow up the gradient) or ``mse`` (``½·(Q − target)²``, the
    same quadratic part everywhere).

    Why both: far from the target Huber's gradient is only the sign of the error, so Huber
    regression is pulled towards the *median* of a target distribution, MSE towards its *mean*.
    Where rare events move the return a lot (a user who churns ends the lifetime: a target of 0
    against ≈ γ·V for one who returns) and returns are much larger than 1, the median ignores the
    rare event and the agent cannot price it."""
    if kind == "huber":
        return F.smooth_l1_loss(q_taken, target)
    if kind == "mse":
        return 0.5 * F.mse_loss(q_taken, target)
    raise ValueError(f"td loss kind={kind!r} is invalid: allowed {', '.join(TD_LOSSES)}")


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.Tensor],
    loss: torch.Tensor,
    max_grad_norm: float | None,
) -> None:
    """Backward, clip the global gradient norm to ``max_grad_norm`` (``None``: no clipping), step.

    The same arithmetic as ``zero_grad(set_to_none=True)``, ``clip_grad_norm_`` and
    ``optimizer.step()``, minus their per-call Python overhead, which dominates on the small
    networks and minibatches of this hot path (see :func:`clip_grad_norm` and
    :func:`adam_step`)."""
    for param in params:
        param.grad = None
    loss.backward()
    grads = [param.grad for param in params]
    if any(grad is None for grad in grads):  # a parameter outside the graph: the general path
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        return
    if max_grad_norm is not None:
        clip_grad_norm(grads, max_grad_norm)  # type: ignore[arg-type]
    if not adam_step(optimizer, params, grads):  # type: ignore[arg-type]
        optimizer.step()


@torch.no_grad()
def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for one device and dtype, same arithmetic (global L2
    norm of the per-tensor norms; scale by ``min(1, max_norm / (norm + 1e-6))``) in three
    multi-tensor kernels and no host sync. Returns the norm before clipping."""
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, scale)
    return total


def adam_step(
    optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], grads: list[torch.Tensor]
) -> bool:
    """The fused Adam kernel on the optimiser's own state, without ``Optimizer.step``'s wrappers.

    Exactly what ``torch.optim.Adam(fused=True).step()`` computes (the same kernel on the same
    state, so checkpoints and ``state_dict`` are unchanged), for one parameter group that the
    optimiser has already stepped once (its state exists). Returns ``False`` where that does not
    hold (other optimisers, capturable / AdamW / AMSGrad variants, a cleared state, a torch without
    the kernel), and the caller then uses ``optimizer.step()``."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    if not group.get("fused") or group["amsgrad"] or group["capturable"] or group["maximize"]:
        return False
    if group.get("decoupled_weight_decay") or isinstance(group["lr"], torch.Tensor):
        return False
    kernel = getattr(torch, "_fused_adam_", None)
    state = optimizer.state
    if kernel is None or len(state) != len(params):
        return False
    try:
        states = [state[param] for param in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        steps = [s["step"] for s in states]
    except KeyError:
        return False
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    kernel(
        list(params), grads, exp_avgs, exp_avg_sqs, [], steps,
        amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
        weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
        grad_scale=None, found_inf=None,
    )  # fmt: skip
    return True


@torch.no_grad()
def update_target(
    target_params: Sequence[torch.Tensor], online_params: Sequence[torch.Tensor], tau: float
) -> None:
    """Hard copy (``tau = 1``) or Polyak averaging ``θ' ← τ·θ + (1 − τ)·θ'``."""
    if tau == 1.0:
        torch._foreach_copy_(list(target_params), list(online_params))
    else:
        torch._foreach_lerp_(list(target_params), list(online_params), tau)
