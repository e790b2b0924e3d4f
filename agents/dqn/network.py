"""Q-networks: observation ``(B, obs_dim)`` → one Q-value per candidate ``(B, C)``.

``CandidateQNetwork`` (default) scores every candidate with the *same* weights from the candidate's
own features and the user summary, so what it learns about "items like this for users like that"
transfers to items it has never seen (cold start, churned catalogues) and does not depend on the
candidate's slot. ``MlpQNetwork`` is the plain MLP over the flat observation (SB3's ``MlpPolicy``
Q-network), kept as an option and as the like-for-like reference in benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from recsim_env.observation import ObsLayout


def _mlp(sizes: Sequence[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


class CandidateQNetwork(nn.Module):
    """Shared per-candidate scorer: ``Q(s, c) = f([item_c, user])``.

    The first layer is applied as ``W_item·item_c + W_user·user`` (the same as a linear layer on
    the concatenation, but the user part is computed once per row instead of once per candidate).
    With ``dueling``, ``Q = V(s) + A(s, c) − mean_c A(s, c)`` where the value head reads the
    candidates' mean-pooled hidden features and the user summary.
    """

    def __init__(self, layout: ObsLayout, hidden_sizes: Sequence[int], dueling: bool = False):
        super().__init__()
        self.num_candidates = layout.num_candidates
        self.item_dim = layout.item_dim
        self.items_size = layout.items_size
        h0 = hidden_sizes[0]
        self.item_in = nn.Linear(layout.item_dim, h0)
        self.user_in = nn.Linear(layout.user_dim, h0, bias=False)
        self.trunk = nn.Sequential(*_mlp(hidden_sizes))  # layers after the first
        self.advantage = nn.Linear(hidden_sizes[-1], 1)
        self.dueling = dueling
        if dueling:
            self.value = nn.Sequential(
                nn.Linear(hidden_sizes[-1] + layout.user_dim, hidden_sizes[-1]),
                nn.ReLU(),
                nn.Linear(hidden_sizes[-1], 1),
            )

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Torch twin of :meth:`ObsLayout.split`: items ``(B, C, item_dim)``, user ``(B, user_dim)``."""
        items = obs[:, : self.items_size].reshape(-1, self.num_candidates, self.item_dim)
        return items, obs[:, self.items_size :]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        items, user = self.split(obs)
        hidden = torch.relu(self.item_in(items) + self.user_in(user).unsqueeze(1))
        hidden = self.trunk(hidden)  # (B, C, h)
        advantage = self.advantage(hidden).squeeze(-1)  # (B, C)
        if not self.dueling:
            return advantage
        value = self.value(torch.cat([hidden.mean(dim=1), user], dim=1))  # (B, 1)
        return value + advantage - advantage.mean(dim=1, keepdim=True)


class MlpQNetwork(nn.Module):
    """Plain MLP over the flat observation, one output per candidate slot (optionally dueling)."""

    def __init__(self, layout: ObsLayout, hidden_sizes: Sequence[int], dueling: bool = False):
        super().__init__()
        self.trunk = nn.Sequential(*_mlp([layout.size, *hidden_sizes]))
        self.advantage = nn.Linear(hidden_sizes[-1], layout.num_candidates)
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(hidden_sizes[-1], 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        hidden = self.trunk(obs)
        advantage = self.advantage(hidden)
        if not self.dueling:
            return advantage
        return self.value(hidden) + advantage - advantage.mean(dim=1, keepdim=True)


def build_q_network(
    kind: str, layout: ObsLayout, hidden_sizes: Sequence[int], dueling: bool = False
) -> nn.Module:
    """``kind``: ``candidate`` (:class:`CandidateQNetwork`) or ``mlp`` (:class:`MlpQNetwork`)."""
    if kind == "candidate":
        return CandidateQNetwork(layout, hidden_sizes, dueling)
    if kind == "mlp":
        return MlpQNetwork(layout, hidden_sizes, dueling)
    raise ValueError(f"network={kind!r} is invalid: allowed 'candidate', 'mlp'")
