"""The K members' Q-networks and Adam optimisers as one computation over stacked parameters.

A stacked parameter is ``(K, *shape)``: member ``k``'s tensor is its row ``k`` (the member's own
``nn.Parameter`` is a view of that row, so its ``state_dict``, checkpoints and resume are those of
a separate run). Every layer is a batched matmul (``baddbmm``) over the K members, so a forward
or gradient step of the whole population costs a handful of kernel launches instead of K times
the per-call overhead of the small networks (at B = 16 that overhead, not arithmetic, is most of
a gradient step).

The functions mirror :mod:`agents.qlearning.network` and :mod:`agents.qlearning.losses` operation
for operation (same order of additions where it matters); they differ from a separate run only by
the reassociation inside the batched kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from agents.qlearning.network import CandidateQNetwork, MlpQNetwork

Params = Mapping[str, torch.Tensor]  # parameter name (as in the module's state_dict) -> (K, ...)


def _linear(x: torch.Tensor, p: Params, name: str, bias: bool = True) -> torch.Tensor:
    """``x (K, N, in) @ W(K, out, in)^T + b(K, out)`` for every member at once.

    A member's result does not depend on which other members share the call, so that a resumed
    population, whose rounds may group members differently, repeats the uninterrupted one bit for
    bit. Measured: batched matmuls give each member the same bits whatever K, except that a
    one-output layer (the Q / value heads) of a single member takes a matrix-vector kernel that
    rounds differently (forward and weight gradient): that case runs as two identical members
    (the copy's gradient is zero and adds exactly)."""
    weight = p[f"{name}.weight"]
    lone_head = x.shape[0] == 1 and weight.shape[1] == 1
    if lone_head:
        x = x.expand(2, *x.shape[1:])
        weight = weight.expand(2, *weight.shape[1:])
    weight = weight.transpose(1, 2)
    if bias:
        b = p[f"{name}.bias"].unsqueeze(1)
        out = torch.baddbmm(b.expand(2, *b.shape[1:]) if lone_head else b, x, weight)
    else:
        out = torch.bmm(x, weight)
    return out[:1] if lone_head else out


def _layer_norm(x: torch.Tensor, p: Params, name: str, eps: float) -> torch.Tensor:
    """LayerNorm over the last dim of ``x (K, ..., h)`` with each member's gain and bias."""
    lead = [1] * (x.dim() - 2)
    weight = p[f"{name}.weight"].view(x.shape[0], *lead, -1)
    bias = p[f"{name}.bias"].view(x.shape[0], *lead, -1)
    return F.layer_norm(x, x.shape[-1:], None, None, eps) * weight + bias


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``(K, ..., d)`` → ``(K, N, d)`` for the batched matmuls."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


class StackedNetwork:
    """Batched forward of K members' networks, all built like ``template`` (same shapes)."""

    def __init__(self, template: CandidateQNetwork | MlpQNetwork) -> None:
        self.candidate = isinstance(template, CandidateQNetwork)
        self.dueling = bool(template.dueling)
        if isinstance(template, CandidateQNetwork):
            self.num_candidates = template.num_candidates
            self.item_dim = template.item_dim
            self.items_size = template.items_size
            self.layer_norm = template.first_norm is not None
            self.hidden = len(template.hidden)
            self.eps = float(template.first_norm.eps) if template.first_norm is not None else 0.0
        else:
            self.num_candidates = template.advantage.out_features
            self.layer_norm = template.norms is not None
            self.hidden = len(template.hidden)
            self.eps = float(template.norms[0].eps) if template.norms is not None else 0.0  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the per-candidate scorer
    def _candidate_scores(
        self, p: Params, items: torch.Tensor, user: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """items ``(K, B, m, item_dim)``, user ``(K, B, user_dim)`` → advantages ``(K, B, m)``
        and the last hidden layer ``(K, B, m, h)``."""
        k, b, m = items.shape[:3]
        first = _linear(_flat(items), p, "item_in").view(k, b, m, -1)
        # out of place (the single network adds in place: on this view autograd would copy);
        # the ReLUs run in place on fresh outputs, never on views (as the single network)
        first = first + _linear(user, p, "user_in", bias=False).unsqueeze(2)
        if self.layer_norm:
            first = _layer_norm(first, p, "first_norm", self.eps)
        x = _flat(torch.relu_(first))
        for i in range(self.hidden):
            x = _linear(x, p, f"hidden.{i}")
            if self.layer_norm:
                x = _layer_norm(x, p, f"hidden_norms.{i}", self.eps)
            x = torch.relu_(x)
        advantage = _linear(x, p, "advantage").view(k, b, m)
        return advantage, x.view(k, b, m, -1)

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, b = obs.shape[:2]
        items = obs[..., : self.items_size].reshape(k, b, self.num_candidates, self.item_dim)
        return items, obs[..., self.items_size :]

    def forward(self, p: Params, obs: torch.Tensor) -> torch.Tensor:
        """``obs (K, B, obs_dim)`` → Q-values ``(K, B, C)``."""
        if self.candidate:
            items, user = self.split(obs)
            advantage, hidden = self._candidate_scores(p, items, user)
            if not self.dueling:
                return advantage
            pooled = torch.cat([hidden.mean(dim=2), user], dim=2)
            value = _linear(torch.relu(_linear(pooled, p, "value_hidden")), p, "value")
            return value + advantage - advantage.mean(dim=2, keepdim=True)
        x = obs
        for i in range(self.hidden):
            x = _linear(x, p, f"hidden.{i}")
            if self.layer_norm:
                x = _layer_norm(x, p, f"norms.{i}", self.eps)
            x = torch.relu_(x)
        advantage = _linear(x, p, "advantage")
        if not self.dueling:
            return advantage
        value = _linear(x, p, "value")
        return value + advantage - advantage.mean(dim=2, keepdim=True)

    def chosen(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chosen candidates' features ``(K, B, m, item_dim)`` and the users' (non-dueling
        per-candidate network)."""
        items, user = self.split(obs)
        index = _columns(actions).unsqueeze(-1).expand(-1, -1, -1, self.item_dim)
        return items.gather(2, index), user

    def score_chosen(self, p: Params, items: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        return self._candidate_scores(p, items, user)[0]

    def q_of(self, p: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q-values of the chosen candidates ``(K, B, m)``."""
        if self.candidate and not self.dueling:
            return self.score_chosen(p, *self.chosen(obs, actions))
        return self.forward(p, obs).gather(2, _columns(actions))


def _columns(actions: torch.Tensor) -> torch.Tensor:
    """``(K, B)`` → ``(K, B, 1)``; ``(K, B, m)`` unchanged."""
    return actions.unsqueeze(2) if actions.dim() == 2 else actions


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per member ``(K,)``: :func:`agents.qlearning.losses.td_loss` (batch mean) of each row."""
    if kind == "huber":
        return F.smooth_l1_loss(q_taken, target, reduction="none").flatten(1).mean(dim=1)
    if kind == "mse":
        return 0.5 * F.mse_loss(q_taken, target, reduction="none").flatten(1).mean(dim=1)
    raise ValueError(f"td loss kind={kind!r} is invalid: allowed huber, mse")


def _per_member(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(K,)`` → broadcastable against ``like (K, ...)``."""
    return x.view(-1, *([1] * (like.dim() - 1)))


@torch.no_grad()
def clip_grad_norm(grads: Sequence[torch.Tensor], max_norm: torch.Tensor) -> torch.Tensor:
    """Per member: scale its gradients by ``min(1, max_norm / (norm + 1e-6))`` where ``norm`` is
    the global L2 norm of its gradients (``clip_grad_norm_``'s rule); ``max_norm`` ``(K,)``,
    ``inf`` for a member without clipping. Returns the norms ``(K,)``."""
    norms = torch.stack([g.flatten(1).norm(2, dim=1) for g in grads], dim=1)  # (K, tensors)
    total = norms.norm(2, dim=1)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(_per_member(scale, grad))
    return total


@torch.no_grad()
def adam_step(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    steps: torch.Tensor,
    lr: torch.Tensor,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """Adam (``torch.optim.Adam``'s rule, no weight decay) for K members in place: ``steps``
    ``(K,)`` float counts (incremented here), ``lr`` ``(K,)`` each member's rate."""
    beta1, beta2 = betas
    steps += 1
    count = steps.double()  # the fused kernel computes these scalars in double precision
    bias2_sqrt = torch.sqrt(1 - torch.pow(beta2, count)).float()
    step_size = (lr.double() / (1 - torch.pow(beta1, count))).float()
    for param, grad, m, v in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / _per_member(bias2_sqrt, v)).add_(eps)
        param.addcdiv_(m * _per_member(-step_size, m), denom)
