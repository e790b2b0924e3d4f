"""Q-networks: observation ``(B, obs_dim)`` → one Q-value per candidate ``(B, C)``.

``CandidateQNetwork`` (default) scores every candidate with the *same* weights from the candidate's
own features and the user summary, so what it learns about "items like this for users like that"
transfers to items it has never seen (cold start, churned catalogues) and does not depend on the
candidate's slot. ``MlpQNetwork`` is the plain MLP over the flat observation (SB3's ``MlpPolicy``
Q-network), kept as an option and as the like-for-like reference in benchmarks.

Both expose ``forward(obs) → (B, C)`` and ``q_of(obs, actions) → (B, m)``, the Q-values of chosen
candidates (``actions``: ``(B,)`` or ``(B, m)``). The training loss only needs the latter, and a
per-candidate scorer can compute it from the chosen candidates alone (``m`` rows per user instead
of ``C``). The hidden layers are applied with ``F.linear`` in a loop rather than through
``nn.Sequential``: same maths, less per-call overhead on the small tensors of this hot path.

``layer_norm=True`` puts a LayerNorm (learned gain and bias) between every hidden linear layer and
its ReLU, as PQN does (Gallici et al., 2025): it keeps the features' scale bounded, which is what
lets Q-learning without a target network or replay stay stable. Without it (the default) the
modules and their initialisation are exactly those of the plain networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from recsim_env.observation import ObsLayout


def _linears(sizes: Sequence[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in pairwise(sizes))


def _norms(sizes: Sequence[int], layer_norm: bool) -> nn.ModuleList | None:
    return nn.ModuleList(nn.LayerNorm(n) for n in sizes) if layer_norm else None


def _norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _relu_stack(
    x: torch.Tensor, layers: nn.ModuleList, norms: nn.ModuleList | None = None
) -> torch.Tensor:
    """Linear (+ LayerNorm) + ReLU per layer. The ReLU runs in place on the fresh output of the
    layer before it (autograd allows it: neither linear nor LayerNorm needs its output to
    differentiate), saving an allocation and a pass over ``(B, C, h)`` per layer."""
    if norms is None:
        for layer in layers:
            x = torch.relu_(F.linear(x, layer.weight, layer.bias))
        return x
    for layer, norm in zip(layers, norms, strict=True):
        x = torch.relu_(_norm(F.linear(x, layer.weight, layer.bias), norm))
    return x


def _as_columns(actions: torch.Tensor) -> torch.Tensor:
    """``(B,)`` → ``(B, 1)``; ``(B, m)`` unchanged."""
    return actions.unsqueeze(1) if actions.dim() == 1 else actions


class CandidateQNetwork(nn.Module):
    """Shared per-candidate scorer: ``Q(s, c) = f([item_c, user])``.

    The first layer is applied as ``W_item·item_c + W_user·user`` (the same as a linear layer on
    the concatenation, but the user part is computed once per row instead of once per candidate).
    With ``dueling``, ``Q = V(s) + A(s, c) − mean_c A(s, c)`` where the value head reads the
    candidates' mean-pooled hidden features and the user summary.
    """

    def __init__(
        self,
        layout: ObsLayout,
        hidden_sizes: Sequence[int],
        dueling: bool = False,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.num_candidates = layout.num_candidates
        self.item_dim = layout.item_dim
        self.items_size = layout.items_size
        h0, h_last = hidden_sizes[0], hidden_sizes[-1]
        self.item_in = nn.Linear(layout.item_dim, h0)
        self.user_in = nn.Linear(layout.user_dim, h0, bias=False)
        self.hidden = _linears(hidden_sizes)  # the layers after the first
        self.advantage = nn.Linear(h_last, 1)
        self.dueling = dueling
        if dueling:
            self.value_hidden = nn.Linear(h_last + layout.user_dim, h_last)
            self.value = nn.Linear(h_last, 1)
        self.first_norm = nn.LayerNorm(h0) if layer_norm else None
        self.hidden_norms = _norms(hidden_sizes[1:], layer_norm)

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Torch twin of :meth:`ObsLayout.split`: items ``(B, C, item_dim)``, user ``(B, user_dim)``."""
        items = obs[:, : self.items_size].reshape(-1, self.num_candidates, self.item_dim)
        return items, obs[:, self.items_size :]

    def _scores(self, items: torch.Tensor, user: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items ``(B, m, item_dim)`` → advantages ``(B, m)`` and last hidden ``(B, m, h)``."""
        first = F.linear(items, self.item_in.weight, self.item_in.bias)
        user_part = F.linear(user, self.user_in.weight).unsqueeze(1)  # broadcast over candidates
        first += user_part  # in place on the fresh linear output (as in _relu_stack)
        if self.first_norm is None:
            hidden = _relu_stack(torch.relu_(first), self.hidden)
        else:
            first = torch.relu_(_norm(first, self.first_norm))
            hidden = _relu_stack(first, self.hidden, self.hidden_norms)
        return F.linear(hidden, self.advantage.weight, self.advantage.bias).squeeze(-1), hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        items, user = self.split(obs)
        advantage, hidden = self._scores(items, user)
        if not self.dueling:
            return advantage
        pooled = torch.cat([hidden.mean(dim=1), user], dim=1)
        value_hidden = torch.relu(
            F.linear(pooled, self.value_hidden.weight, self.value_hidden.bias)
        )
        value = F.linear(value_hidden, self.value.weight, self.value.bias)  # (B, 1)
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q-values of the chosen candidates ``(B, m)``; without dueling only those are scored."""
        if self.dueling:  # the advantage mean needs every candidate
            return self(obs).gather(1, _as_columns(actions))
        return self.score_chosen(*self.chosen(obs, actions))

    def chosen(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the Q-values of the chosen candidates depend on (without dueling): their features
        ``(B, m, item_dim)`` and the user's ``(B, user_dim)``, about a tenth of the observation.
        Learners that keep transitions only to score the taken actions store these."""
        items, user = self.split(obs)
        index = _as_columns(actions).unsqueeze(-1).expand(-1, -1, self.item_dim)
        return items.gather(1, index), user

    def score_chosen(self, items: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B, m)`` of candidates given by their features (see :meth:`chosen`); not
        defined with dueling (the advantage's mean needs every candidate)."""
        if self.dueling:
            raise ValueError("score_chosen needs every candidate with a dueling head: use q_of")
        return self._scores(items, user)[0]


class MlpQNetwork(nn.Module):
    """Plain MLP over the flat observation, one output per candidate slot (optionally dueling)."""

    def __init__(
        self,
        layout: ObsLayout,
        hidden_sizes: Sequence[int],
        dueling: bool = False,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.hidden = _linears([layout.size, *hidden_sizes])
        self.advantage = nn.Linear(hidden_sizes[-1], layout.num_candidates)
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(hidden_sizes[-1], 1)
        self.norms = _norms(hidden_sizes, layer_norm)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        hidden = _relu_stack(obs, self.hidden, self.norms)
        advantage = F.linear(hidden, self.advantage.weight, self.advantage.bias)
        if not self.dueling:
            return advantage
        value = F.linear(hidden, self.value.weight, self.value.bias)
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def q_of(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q-values of the chosen candidates ``(B, m)``."""
        return self(obs).gather(1, _as_columns(actions))


def build_q_network(
    kind: str,
    layout: ObsLayout,
    hidden_sizes: Sequence[int],
    dueling: bool = False,
    layer_norm: bool = False,
) -> CandidateQNetwork | MlpQNetwork:
    """``kind``: ``candidate`` (:class:`CandidateQNetwork`) or ``mlp`` (:class:`MlpQNetwork`)."""
    if kind == "candidate":
        return CandidateQNetwork(layout, hidden_sizes, dueling, layer_norm)
    if kind == "mlp":
        return MlpQNetwork(layout, hidden_sizes, dueling, layer_norm)
    raise ValueError(f"network={kind!r} is invalid: allowed 'candidate', 'mlp'")
