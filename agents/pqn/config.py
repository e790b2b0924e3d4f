"""Typed, validated hyperparameters of :class:`agents.pqn.PQNAgent`.

Every value is checked on construction with the project's shared checkers; an invalid one raises
``ConfigError`` (a ``ValueError``) naming the key, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from agents.qlearning.config import LR_SCHEDULES, NETWORKS, TD_LOSSES, QConfig
from recsim_env.validation import (
    check_bool,
    check_choice,
    check_device,
    check_int,
    check_int_list,
    check_real,
    validate_field,
)


@dataclass
class PQNConfig(QConfig):
    """PQN hyperparameters (names shared with our DQN where the meaning is shared).

    One *rollout* is ``rollout_steps`` vector steps over all ``B`` users; after each, the agent
    computes Q(λ) targets over it and takes ``num_epochs`` passes over its ``N = rollout_steps · B``
    transitions, each pass in ``min(num_minibatches, N // minibatch_size)`` (at least 1) shuffled
    minibatches of equal size (±1). As in PQN, the number of gradient steps per rollout stays fixed
    as ``B`` grows (the minibatches grow instead: cheap per transition, and what keeps a large
    ``B`` fast), while ``minibatch_size`` is the smallest minibatch, so that a small ``B`` does
    not take many tiny steps. Steps are user-steps (a vector step over ``B`` users counts ``B``),
    as everywhere in the project.
    """

    label = "PQN"

    # --- objective
    gamma: float = 0.99
    td_lambda: float = 0.65  # λ of the Q(λ) targets: 0 = one-step Q-learning, 1 = Monte Carlo
    loss: str = "mse"  # mse (½ squared TD error, as PQN) | huber (δ = 1, as our DQN)
    # rewards are multiplied by this before the targets (PQN's REW_SCALE): Q-values, train/q_mean
    # and train/loss are in scaled units; the env's rewards and every eval/online metric are not
    reward_scale: float = 1.0
    # --- optimisation
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | linear (from lr to lr_end over total_steps)
    lr_end: float = 0.0
    max_grad_norm: float | None = 10.0  # None: no clipping
    rollout_steps: int = 16  # vector steps per rollout (T)
    num_epochs: int = 2  # passes over each rollout
    num_minibatches: int = 32  # minibatches per pass at most (PQN's NUM_MINIBATCHES)
    minibatch_size: int = 256  # the smallest minibatch (transitions)
    # --- exploration (linear from epsilon_start to epsilon_end over exploration_fraction * total)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.1
    total_steps: int | None = None  # schedule horizon; None: the first learn() call's total
    # --- network
    network: str = "candidate"  # candidate (shared per-candidate scorer) | mlp (flat observation)
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    layer_norm: bool = True  # LayerNorm before every hidden ReLU (what keeps PQN stable)
    # V(s) + A(s, c) head, as our DQN's (not PQN's): the state's value, large over a lifetime, is
    # learnt apart from the small differences between candidates; rollouts then keep whole
    # observations (the advantage's mean needs every candidate)
    dueling: bool = False
    # --- runtime
    device: str = "cpu"  # cpu (what every recorded run used) | auto | cuda | cuda:<index>
    torch_threads: int | None = 1  # None: leave torch's setting alone
    seed: int | None = None

    def __post_init__(self) -> None:
        v = partial(validate_field, self)
        v("gamma", check_real, 0.0, 1.0)
        v("td_lambda", check_real, 0.0, 1.0)
        v("loss", check_choice, TD_LOSSES)
        v("reward_scale", check_real, 0.0, lo_open=True)
        v("lr", check_real, 0.0, lo_open=True)
        v("lr_schedule", check_choice, LR_SCHEDULES)
        v("lr_end", check_real, 0.0)
        v("max_grad_norm", check_real, 0.0, lo_open=True, optional=True)
        v("rollout_steps", check_int, 1)
        v("num_epochs", check_int, 1)
        v("num_minibatches", check_int, 1)
        v("minibatch_size", check_int, 1)
        for key in ("epsilon_start", "epsilon_end", "exploration_fraction"):
            v(key, check_real, 0.0, 1.0)
        v("total_steps", check_int, 1, optional=True)
        v("network", check_choice, NETWORKS)
        v("hidden_sizes", check_int_list)
        v("layer_norm", check_bool)
        v("dueling", check_bool)
        v("device", check_device)
        v("torch_threads", check_int, 1, optional=True)
        v("seed", check_int, 0, optional=True)

    def minibatches(self, transitions: int) -> int:
        """Minibatches per pass over a rollout of ``transitions`` (see the class doc)."""
        return max(1, min(self.num_minibatches, transitions // self.minibatch_size))
