"""SB3's DQN, PPO, A2C and sb3-contrib's QR-DQN behind our :class:`~agents.base.Agent` contract.

SB3 does the learning, with its own unmodified ``model.learn(total_timesteps, callback=...,
reset_num_timesteps=False)``, and saves/loads with its own zip format. The adapter only

* turns our gymnasium vector env into an SB3 ``VecEnv`` over the same batched core
  (:class:`~recsim_env.sb3_vec_env.RecSimVecEnv`); an SB3 ``VecEnv`` (e.g. from ``make_vec_env``)
  or a single gymnasium env is used as SB3 would use it;
* maps our uniform hyperparameter names onto SB3's, validates them, and stores them in the zip
  (as the model attribute ``recsim_hparams``) so that ``load`` rebuilds the same agent;
* routes metrics to our :class:`~agents.base.StepCallback` (see :mod:`agents.sb3.bridge`).

Selected in a config as ``agent: {_target_: agents.sb3.SB3DQN, gamma: 0.99, lr: 1e-4, seed: ${seed}}``.
Anything else SB3's constructor takes goes in ``sb3_kwargs`` (passed as is).

Common keys (all adapters; ours / SB3's default):

================  ==============  ===========  =================================================
key               ours            SB3          meaning
================  ==============  ===========  =================================================
gamma             0.99            0.99         discount
lr                per algorithm   same         ``learning_rate`` (see the classes)
lr_schedule       constant        constant     ``constant`` or ``linear`` (lr → 0 over training)
schedule_steps    null            —            horizon (user-steps) of the lr/ε schedules; null =
                                               SB3's: progress of each ``learn`` call
hidden_sizes      [64, 64]        [64, 64]     ``policy_kwargs.net_arch``
seed              null            None         SB3's ``seed``: seeds the global python/numpy/torch
                                               RNGs, the action space and the env's next reset
                                               (SB3's ``load`` seeds them again)
device            auto            auto         ``auto``, ``cpu``, ``cuda``, ``cuda:N``
torch_threads     1               (all cores)  ``torch.set_num_threads`` at construction/load
log_interval      per algorithm   same         SB3 ``learn(log_interval=)``: logger dumps
verbose           0               0            1: SB3 also prints its tables to stdout
sb3_kwargs        {}              —            extra SB3 constructor arguments
================  ==============  ===========  =================================================

Only single-item mode (``Discrete(C)`` actions) is supported: SB3's DQN/QR-DQN take only
``Discrete`` actions, and its PPO/A2C sample ``MultiDiscrete`` slate positions independently, which
proposes duplicate items that the simulator rejects.

``learn`` may overshoot ``total_steps`` to finish SB3's current rollout (PPO/A2C: ``n_steps × B``,
DQN: ``train_freq × B`` user-steps) unless the callback's ``on_step`` returns ``False`` first.

The shared base (:class:`SB3Agent`: hyperparameters, ``learn``/``act``, save and trusted load) is
in :mod:`agents.sb3.agent`; this module holds the per-algorithm classes and re-exports the base's
names.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork

from agents.qlearning.network import CandidateQNetwork
from agents.sb3 import hparams as hp
from agents.sb3.actor_critic import CandidateActorCriticPolicy
from agents.sb3.agent import COMMON_PARAMS, Param, SB3Agent, as_sb3_env
from recsim_env.observation import ObsLayout, get_obs_layout

__all__ = [
    "COMMON_PARAMS",
    "SB3A2C",
    "SB3DQN",
    "SB3PPO",
    "SB3QRDQN",
    "Param",
    "SB3Agent",
    "as_sb3_env",
]


# ---------------------------------------------------------------------------- value-based
_DQN_PARAMS = hp.DQN_PARAMS


class _ValueBasedAgent(SB3Agent):
    def _make_schedules(self, values: dict[str, Any]) -> tuple[hp.StepSchedule, hp.StepSchedule]:
        lr_schedule, _ = super()._make_schedules(values)
        eps = hp.StepSchedule(
            values["epsilon_start"],
            values["epsilon_end"],
            values["exploration_fraction"],
            values["schedule_steps"],
        )
        return lr_schedule, eps

    def _algorithm_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        train_freq = values["train_freq"]
        return {
            "exploration_initial_eps": values["epsilon_start"],
            "exploration_final_eps": values["epsilon_end"],
            "exploration_fraction": values["exploration_fraction"],
            "batch_size": values["batch_size"],
            "buffer_size": values["buffer_size"],
            "learning_starts": values["learning_starts"],
            "train_freq": tuple(train_freq) if isinstance(train_freq, list) else train_freq,
            "gradient_steps": values["gradient_steps"],
            "target_update_interval": values["target_update_interval"],
            "n_steps": values["n_steps"],
        }


def _check_dueling(owner: str, values: dict[str, Any]) -> None:
    """Dueling needs our network: SB3's MlpPolicy (and sb3-contrib's) has no dueling head."""
    if values["dueling"] and values["network"] == "mlp":
        raise ValueError(
            f"invalid {owner}.dueling=True with network=mlp (allowed: dueling with "
            "network=candidate; SB3's MlpPolicy has no dueling head)"
        )


class CandidateQNet(QNetwork):
    """SB3's ``QNetwork`` whose ``q_net`` is our per-candidate scorer
    (:class:`~agents.qlearning.network.CandidateQNetwork`): SB3's flatten extractor hands it the
    observation, and the same weights score every candidate from its own features and the user's.

    Why: SB3's ``MlpPolicy`` has one output per candidate *slot*; the candidates of a slot change at
    every step, so each slot's output must relearn from a twentieth of the data what the item
    features mean. On ``LongTerm-v0`` it stayed below random at 100k user-steps (docs/studies/tuning).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: Any,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[torch.nn.Module] = torch.nn.ReLU,
        normalize_images: bool = True,
        layout: ObsLayout | None = None,
        dueling: bool = False,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            net_arch,
            activation_fn,
            normalize_images,
        )
        if layout is None:
            raise ValueError("CandidateQNet needs the observation layout (layout=)")
        self.layout, self.dueling = layout, dueling
        # SB3 annotates q_net as nn.Sequential but only calls it: any module mapping features to Q works
        self.q_net = CandidateQNetwork(  # type: ignore[assignment]
            layout, net_arch or [64, 64], dueling=dueling
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "layout": self.layout,
            "dueling": self.dueling,
        }


class CandidateDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` with :class:`CandidateQNet` as its online and target networks."""

    def __init__(
        self, *args: Any, layout: ObsLayout | None = None, dueling: bool = False, **kwargs: Any
    ) -> None:
        self.layout, self.dueling = layout, dueling  # read by make_q_net during super().__init__
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return CandidateQNet(**net_args, layout=self.layout, dueling=self.dueling).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "layout": self.layout,
            "dueling": self.dueling,
        }


class SB3DQN(_ValueBasedAgent):
    """SB3's DQN (Discrete actions: single-item mode).

    Keys (ours / SB3's default), besides the common ones in :mod:`agents.sb3.adapters`:

    ========================  ==========  ==========  =======================================
    key                       ours        SB3         SB3 argument
    ========================  ==========  ==========  =======================================
    lr                        1e-4        1e-4        learning_rate
    epsilon_start             1.0         1.0         exploration_initial_eps
    epsilon_end               0.05        0.05        exploration_final_eps
    exploration_fraction      0.1         0.1         exploration_fraction
    batch_size                32          32          batch_size
    buffer_size               100_000     1_000_000   buffer_size (ours: ~220 MB at C=20)
    learning_starts           100         100         learning_starts (user-steps)
    train_freq                4           4           train_freq (vector steps, or [n, unit])
    gradient_steps            1           1           gradient_steps (-1: one per vector step)
    target_update_interval    10_000      10_000      target_update_interval (user-steps)
    n_steps                   1           1           n_steps (n-step returns)
    log_interval              4           4           learn(log_interval=) in episodes
    save_replay_buffer        false       —           also save the buffer next to the zip
    network                   mlp         mlp         policy: ``mlp`` = SB3's MlpPolicy;
                                                      ``candidate`` = :class:`CandidateDQNPolicy`
    dueling                   false       —           dueling head (``network=candidate`` only)
    ========================  ==========  ==========  =======================================

    With ``B`` users per vector step, ``train_freq=4, gradient_steps=1`` is one gradient step per
    ``4·B`` transitions; SB3's ε-greedy draws one coin per vector step for the whole batch.
    """

    algorithm = DQN
    params: ClassVar[dict[str, Param]] = {**_DQN_PARAMS, **hp.DQN_NETWORK_PARAMS}

    def _check_cross(self, values: dict[str, Any]) -> None:
        super()._check_cross(values)
        _check_dueling(type(self).__name__, values)

    def _policy(self, values: dict[str, Any]) -> str | type[Any]:
        return CandidateDQNPolicy if values["network"] == "candidate" else "MlpPolicy"

    def _sb3_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._sb3_kwargs(values)
        if values["network"] == "candidate":
            kwargs["policy_kwargs"] = {
                **kwargs["policy_kwargs"],
                "layout": get_obs_layout(self.vec_env),
                "dueling": values["dueling"],
            }
        return kwargs

    def _scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.policy.q_net(obs)


class CandidateQuantileScorer(CandidateQNetwork):
    """Our per-candidate scorer with ``n_quantiles`` outputs per candidate instead of one: the same
    weights map a candidate's features and the user's to its return quantiles. With ``dueling``,
    quantile by quantile: ``θ_τ(s, c) = V_τ(s) + A_τ(s, c) − mean_c A_τ(s, c)``.

    ``forward(obs)`` returns ``(B, n_quantiles · C)`` ordered quantile-major, which is what
    sb3-contrib's ``QuantileNetwork.forward`` reshapes with ``view(-1, n_quantiles, C)``. Only
    ``forward`` is used (sb3-contrib's loss needs every candidate's quantiles for the target's
    argmax); the parent's ``q_of``/``score_chosen`` are not defined for quantiles.
    """

    def __init__(
        self, layout: ObsLayout, hidden_sizes: list[int], n_quantiles: int, dueling: bool = False
    ) -> None:
        super().__init__(layout, hidden_sizes, dueling=dueling)
        self.n_quantiles = n_quantiles
        self.advantage = torch.nn.Linear(hidden_sizes[-1], n_quantiles)
        if dueling:
            self.value = torch.nn.Linear(hidden_sizes[-1], n_quantiles)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        items, user = self.split(obs)
        advantage, hidden = self._scores(items, user)  # (B, C, n_quantiles); (B, C) if n = 1
        quantiles = advantage.reshape(len(obs), self.num_candidates, self.n_quantiles)
        if self.dueling:
            pooled = torch.cat([hidden.mean(dim=1), user], dim=1)
            value_hidden = torch.relu(
                F.linear(pooled, self.value_hidden.weight, self.value_hidden.bias)
            )
            value = F.linear(value_hidden, self.value.weight, self.value.bias)  # (B, n_quantiles)
            quantiles = value.unsqueeze(1) + quantiles - quantiles.mean(dim=1, keepdim=True)
        return quantiles.transpose(1, 2).reshape(len(obs), -1)


class CandidateQuantileNet(QuantileNetwork):
    """sb3-contrib's ``QuantileNetwork`` whose ``quantile_net`` is :class:`CandidateQuantileScorer`
    (why: as :class:`CandidateQNet` for DQN, the flat MLP has one output block per candidate slot)."""

    def __init__(
        self,
        *args: Any,
        layout: ObsLayout | None = None,
        dueling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if layout is None:
            raise ValueError("CandidateQuantileNet needs the observation layout (layout=)")
        self.layout, self.dueling = layout, dueling
        # sb3-contrib annotates quantile_net as nn.Sequential but only calls it
        self.quantile_net = CandidateQuantileScorer(  # type: ignore[assignment]
            layout, self.net_arch, self.n_quantiles, dueling=dueling
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "layout": self.layout,
            "dueling": self.dueling,
        }


class CandidateQRDQNPolicy(QRDQNPolicy):
    """sb3-contrib's ``QRDQNPolicy`` with :class:`CandidateQuantileNet` as its online and target
    networks; saved and loaded by sb3-contrib's zip (layout and dueling are constructor args)."""

    def __init__(
        self, *args: Any, layout: ObsLayout | None = None, dueling: bool = False, **kwargs: Any
    ) -> None:
        self.layout, self.dueling = layout, dueling  # read by make_quantile_net in super().__init__
        super().__init__(*args, **kwargs)

    def make_quantile_net(self) -> QuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return CandidateQuantileNet(**net_args, layout=self.layout, dueling=self.dueling).to(
            self.device
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "layout": self.layout,
            "dueling": self.dueling,
        }


class SB3QRDQN(_ValueBasedAgent):
    """sb3-contrib's QR-DQN (distributional DQN; Discrete actions).

    Same keys as :class:`SB3DQN` (``network``/``dueling`` included: ``candidate`` =
    :class:`CandidateQRDQNPolicy`, ``n_quantiles`` outputs per candidate) plus ``n_quantiles``;
    defaults follow sb3-contrib's:

    ========================  ==========  ==========  =======================================
    key                       ours        SB3         SB3 argument
    ========================  ==========  ==========  =======================================
    lr                        5e-5        5e-5        learning_rate
    epsilon_end               0.01        0.01        exploration_final_eps
    exploration_fraction      0.1         0.005       exploration_fraction
    n_quantiles               50          200         policy_kwargs.n_quantiles
    buffer_size               100_000     1_000_000   buffer_size
    (others)                  as SB3DQN   as DQN
    ========================  ==========  ==========  =======================================
    """

    algorithm = QRDQN
    params: ClassVar[dict[str, Param]] = {**hp.QRDQN_PARAMS, **hp.DQN_NETWORK_PARAMS}

    def _policy(self, values: dict[str, Any]) -> str | type[Any]:
        return CandidateQRDQNPolicy if values["network"] == "candidate" else "MlpPolicy"

    def _sb3_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._sb3_kwargs(values)
        kwargs["policy_kwargs"] = {"n_quantiles": values["n_quantiles"], **kwargs["policy_kwargs"]}
        if values["network"] == "candidate":
            kwargs["policy_kwargs"]["layout"] = get_obs_layout(self.vec_env)
            kwargs["policy_kwargs"]["dueling"] = values["dueling"]
        return kwargs

    def _scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.policy.quantile_net(obs).mean(dim=1)

    def _check_cross(self, values: dict[str, Any]) -> None:
        super()._check_cross(values)
        if "n_quantiles" in values["sb3_kwargs"].get("policy_kwargs", {}):
            raise ValueError(
                f"{type(self).__name__}: sb3_kwargs.policy_kwargs.n_quantiles is set through "
                "n_quantiles"
            )
        _check_dueling(type(self).__name__, values)


# ---------------------------------------------------------------------------- actor-critic
class _ActorCriticAgent(SB3Agent):
    """PPO/A2C: ``network=candidate`` picks :class:`CandidateActorCriticPolicy` (per-candidate
    logits from our shared scorer) instead of SB3's ``MlpPolicy`` (one logit per slot)."""

    def _policy(self, values: dict[str, Any]) -> str | type[Any]:
        return CandidateActorCriticPolicy if values["network"] == "candidate" else "MlpPolicy"

    def _sb3_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        kwargs = super()._sb3_kwargs(values)
        if values["network"] == "candidate":
            kwargs["policy_kwargs"] = {
                **kwargs["policy_kwargs"],
                "layout": get_obs_layout(self.vec_env),
            }
        return kwargs

    def _check_cross(self, values: dict[str, Any]) -> None:
        super()._check_cross(values)
        if values["network"] == "candidate" and not values["hidden_sizes"]:
            raise ValueError(
                f"invalid {type(self).__name__}.hidden_sizes=[] with network=candidate (allowed: "
                "at least one hidden layer; the scorer's first layer reads item and user features)"
            )


class SB3PPO(_ActorCriticAgent):
    """SB3's PPO (Discrete actions: single-item mode).

    Keys (ours / SB3's default), besides the common ones in :mod:`agents.sb3.adapters`:

    ==============  ==========  ==========  =========================================
    key             ours        SB3         SB3 argument
    ==============  ==========  ==========  =========================================
    lr              3e-4        3e-4        learning_rate
    n_steps         2048        2048        n_steps (vector steps per rollout)
    batch_size      64          64          batch_size (minibatch, >= 2)
    n_epochs        10          10          n_epochs
    gae_lambda      0.95        0.95        gae_lambda
    clip_range      0.2         0.2         clip_range
    ent_coef        0.0         0.0         ent_coef
    log_interval    1           1           learn(log_interval=) in rollouts
    hidden_sizes    [64, 64]    [64, 64]    net_arch (separate pi and vf networks)
    network         mlp         mlp         policy: ``mlp`` = SB3's MlpPolicy; ``candidate``
                                            = per-candidate logits (agents/sb3/actor_critic.py)
    ==============  ==========  ==========  =========================================
    """

    algorithm = PPO
    params: ClassVar[dict[str, Param]] = hp.PPO_PARAMS

    def _algorithm_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            k: values[k]
            for k in ("n_steps", "batch_size", "n_epochs", "gae_lambda", "clip_range", "ent_coef")
        }


class SB3A2C(_ActorCriticAgent):
    """SB3's A2C (Discrete actions: single-item mode).

    Keys (ours / SB3's default), besides the common ones in :mod:`agents.sb3.adapters`:

    ==============  ==========  ==========  =========================================
    key             ours        SB3         SB3 argument
    ==============  ==========  ==========  =========================================
    lr              7e-4        7e-4        learning_rate (RMSprop)
    n_steps         5           5           n_steps (vector steps per update)
    gae_lambda      1.0         1.0         gae_lambda
    ent_coef        0.0         0.0         ent_coef
    log_interval    100         100         learn(log_interval=) in updates
    network         mlp         mlp         policy: as :class:`SB3PPO`'s
    ==============  ==========  ==========  =========================================
    """

    algorithm = A2C
    params: ClassVar[dict[str, Param]] = hp.A2C_PARAMS

    def _algorithm_kwargs(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: values[k] for k in ("n_steps", "gae_lambda", "ent_coef")}
