"""A per-candidate actor-critic policy for SB3's PPO and A2C (``agent.network=candidate``).

SB3's ``MlpPolicy`` maps the flat observation to one action logit per candidate *slot*. Which item
sits in a slot changes at every step, so each slot's logit has to learn on its own, from a
twentieth of the data, what the item features in its part of the observation mean (on
``LongTerm-v0`` the learned policies stayed near random or myopic: docs/studies/tuning/on_policy.md).

:class:`CandidateActorCriticPolicy` keeps SB3's ``ActorCriticPolicy`` (its distribution, ``forward``,
``evaluate_actions``, save/load and SB3's unmodified PPO/A2C losses) and replaces only the networks:

* the actor: action logits = per-candidate scores of our shared scorer
  (:class:`~agents.qlearning.network.CandidateQNetwork`, the one our DQN and PQN use): the same
  weights score every candidate from its own features and the user's, so permuting the candidates
  permutes the logits, and what is learned about an item transfers to every slot;
* the critic: an MLP over the user features and the candidates' mean features (a permutation-
  invariant summary of the observation), with its own weights (SB3's PPO/A2C default also keeps the
  policy and value networks apart).

SB3's ``action_net`` (a linear map from the latent to the logits, which would mix the slots again)
is the identity here; the scorer's output layer gets SB3's small initial gain (0.01) instead, so the
initial policy is near uniform, as with ``MlpPolicy``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from agents.qlearning.network import CandidateQNetwork
from recsim_env.observation import ObsLayout

__all__ = ["CandidateActorCritic", "CandidateActorCriticPolicy"]


class CandidateActorCritic(nn.Module):
    """SB3's ``mlp_extractor`` slot: flat observation → (logits ``(B, C)``, value latent ``(B, h)``).

    ``latent_dim_pi`` is the number of candidates (the actor's latent *is* the logits) and
    ``latent_dim_vf`` the critic's last hidden size (SB3's ``value_net`` maps it to the value).
    """

    def __init__(self, layout: ObsLayout, hidden_sizes: list[int]) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError(
                f"invalid hidden_sizes={hidden_sizes!r} (allowed: at least one hidden layer with "
                "network=candidate)"
            )
        self.scorer = CandidateQNetwork(layout, hidden_sizes)
        layers: list[nn.Module] = []
        for n_in, n_out in zip(
            [layout.item_dim + layout.user_dim, *hidden_sizes[:-1]], hidden_sizes, strict=True
        ):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.critic = nn.Sequential(*layers)
        self.latent_dim_pi = layout.num_candidates
        self.latent_dim_vf = hidden_sizes[-1]

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.scorer(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        items, user = self.scorer.split(features)
        return self.critic(torch.cat([items.mean(dim=1), user], dim=1))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class CandidateActorCriticPolicy(ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` with :class:`CandidateActorCritic` as its networks.

    Takes SB3's arguments plus ``layout`` (the observation's :class:`ObsLayout`, stored in the zip
    with the other constructor parameters, so SB3's ``load`` rebuilds the same policy). ``net_arch``
    is the list of hidden sizes, used by both the scorer and the critic.
    """

    def __init__(self, *args: Any, layout: ObsLayout | None = None, **kwargs: Any) -> None:
        if layout is None:
            raise ValueError("CandidateActorCriticPolicy needs the observation layout (layout=)")
        self.layout = layout  # read by _build_mlp_extractor during super().__init__
        super().__init__(*args, **kwargs)

    def _hidden_sizes(self) -> list[int]:
        arch = self.net_arch
        if isinstance(arch, dict):  # SB3's {pi: [...], vf: [...]}: the scorer's sizes
            arch = arch.get("pi", [])
        return [int(n) for n in arch]

    def _build_mlp_extractor(self) -> None:
        # SB3 annotates mlp_extractor as MlpExtractor but only calls its forward/forward_actor/
        # forward_critic and reads latent_dim_pi/latent_dim_vf, which CandidateActorCritic has
        self.mlp_extractor = CandidateActorCritic(  # type: ignore[assignment]
            self.layout, self._hidden_sizes()
        )

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # the logits are the scorer's outputs: no linear map across the slots
        self.action_net = nn.Identity()
        if self.ortho_init:  # SB3 gives its action_net gain 0.01 (a near-uniform initial policy)
            extractor: Any = self.mlp_extractor
            extractor.scorer.advantage.apply(partial(self.init_weights, gain=0.01))
        # the optimizer built by super() held the discarded action_net's parameters
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "layout": self.layout}
