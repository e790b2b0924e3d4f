"""Typed, validated hyperparameters of :class:`agents.dqn.DQNAgent`.

Every value is checked on construction; an invalid one raises ``ValueError`` naming the key, the
value and what is allowed, so a typo in a Hydra override fails at once instead of hours into a run.
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
    fail,
    validate_field,
)


@dataclass
class DQNConfig(QConfig):
    """DQN hyperparameters (names shared with the other agents where the meaning is shared).

    Steps are user-steps (one vector step over ``B`` users counts ``B``) except ``train_freq``,
    which, as in SB3 with a VecEnv, counts vector steps (calls to ``env.step``).

    The defaults propagate value (measured on LongTerm-v0 and DriftingUsers-v0, see docs/agents.md,
    DQN paragraph and ``docs/studies/gamma``): a Polyak target moved after every vector step
    (``tau = 0.005``, ``target_update_interval = 1``: the target lags ≈ 200 training rounds
    whatever ``B``), a dueling head and the squared TD loss. Before, the target moved by
    τ = 0.005 once every 1,000 user-steps (a lag of ≈ 12,500 training rounds at B = 16), so
    bootstrapped values barely travelled and the agent was a contextual bandit whatever γ.
    """

    label = "DQN"

    # --- objective and optimisation
    gamma: float = 0.99
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | linear (from lr to lr_end over total_steps)
    lr_end: float = 0.0
    # mse (½ squared TD error) | huber (δ = 1). MSE regresses on the mean return; Huber, linear for
    # errors > 1, on something near the median, which ignores rare large events such as churn.
    loss: str = "mse"
    max_grad_norm: float | None = 10.0  # None: no clipping
    batch_size: int = 64
    # --- exploration (linear from epsilon_start to epsilon_end over exploration_fraction * total)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.1
    # --- replay and targets
    buffer_size: int = 100_000
    n_step: int = 1  # 3 measured no better on LongTerm-v0 or DriftingUsers-v0
    double: bool = True
    dueling: bool = True  # V(s) + A(s, c): small long-term differences between candidates
    tau: float = 0.005  # per target update: 1.0 hard copy, < 1 Polyak θ' ← τ·θ + (1 − τ)·θ'
    # user-steps between target updates, rounded down to whole vector steps, at least one (SB3's
    # rule): 1 (or anything <= B) = after every vector step. For hard copies (tau = 1) use a
    # multiple of B: 2,000 at B = 16 (125 training rounds) worked, 500 diverged.
    target_update_interval: int = 1
    # --- when to train
    learning_starts: int = 1_000  # user-steps of uniform random acting before training
    train_freq: int = 1  # vector steps between training rounds (SB3 semantics)
    gradient_steps: int = 1  # per training round; -1: one per user-step collected in the round
    total_steps: int | None = None  # schedule horizon; None: the first learn() call's total
    # --- network
    network: str = "candidate"  # candidate (shared per-candidate scorer) | mlp (flat observation)
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    # --- runtime
    # auto | cpu | cuda | cuda:<index>. cpu: what every recorded run used (these small networks
    # over 16 users are faster there); auto picks CUDA where there is one.
    device: str = "cpu"
    cuda_graphs: bool = False  # replay each gradient step as a CUDA graph (CUDA only; experimental)
    torch_threads: int | None = 1  # None: leave torch's setting alone
    seed: int | None = None

    def __post_init__(self) -> None:
        v = partial(validate_field, self)
        v("gamma", check_real, 0.0, 1.0)
        v("lr", check_real, 0.0, lo_open=True)
        v("lr_schedule", check_choice, LR_SCHEDULES)
        v("lr_end", check_real, 0.0)
        v("loss", check_choice, TD_LOSSES)
        v("max_grad_norm", check_real, 0.0, lo_open=True, optional=True)
        v("batch_size", check_int, 1)
        for key in ("epsilon_start", "epsilon_end", "exploration_fraction"):
            v(key, check_real, 0.0, 1.0)
        v("buffer_size", check_int, 1)
        if self.buffer_size < self.batch_size:
            fail(
                "DQNConfig.buffer_size",
                self.buffer_size,
                f"an integer >= batch_size ({self.batch_size})",
            )
        v("n_step", check_int, 1)
        v("double", check_bool)
        v("dueling", check_bool)
        v("tau", check_real, 0.0, 1.0, lo_open=True)
        v("target_update_interval", check_int, 1)
        v("learning_starts", check_int, 0)
        v("train_freq", check_int, 1)
        v("gradient_steps", check_int, 1, also=(-1,))
        v("total_steps", check_int, 1, optional=True)
        v("network", check_choice, NETWORKS)
        v("hidden_sizes", check_int_list)
        v("device", check_device)
        v("cuda_graphs", check_bool)
        v("torch_threads", check_int, 1, optional=True)
        v("seed", check_int, 0, optional=True)
