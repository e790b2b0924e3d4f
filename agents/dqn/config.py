"""Typed, validated hyperparameters of :class:`agents.dqn.DQNAgent`.

Every value is checked on construction; an invalid one raises ``ValueError`` naming the key, the
value and what is allowed, so a typo in a Hydra override fails at once instead of hours into a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

from recsim_env.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_device,
    check_int,
    check_int_list,
    check_real,
    fail,
    validate_field,
)

NETWORKS = ("candidate", "mlp")
LR_SCHEDULES = ("constant", "linear")


@dataclass
class DQNConfig:
    """DQN hyperparameters (names shared with the other agents where the meaning is shared).

    Steps are user-steps (one vector step over ``B`` users counts ``B``) except ``train_freq``,
    which, as in SB3 with a VecEnv, counts vector steps (calls to ``env.step``).
    """

    # --- objective and optimisation
    gamma: float = 0.99
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | linear (from lr to lr_end over total_steps)
    lr_end: float = 0.0
    max_grad_norm: float | None = 10.0  # None: no clipping
    batch_size: int = 64
    # --- exploration (linear from epsilon_start to epsilon_end over exploration_fraction * total)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.1
    # --- replay and targets
    buffer_size: int = 100_000
    n_step: int = 1
    double: bool = True
    dueling: bool = False
    tau: float = (
        0.005  # 1.0: hard copy; < 1: Polyak averaging (a slow target: hard copies diverged)
    )
    target_update_interval: int = 1_000  # user-steps between target updates
    # --- when to train
    learning_starts: int = 1_000  # user-steps of uniform random acting before training
    train_freq: int = 1  # vector steps between training rounds (SB3 semantics)
    gradient_steps: int = 1  # per training round; -1: one per user-step collected in the round
    total_steps: int | None = None  # schedule horizon; None: the first learn() call's total
    # --- network
    network: str = "candidate"  # candidate (shared per-candidate scorer) | mlp (flat observation)
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    # --- runtime
    device: str = "auto"  # auto | cpu | cuda | cuda:<index>
    cuda_graphs: bool = False  # replay each gradient step as a CUDA graph (CUDA only; experimental)
    torch_threads: int | None = 1  # None: leave torch's setting alone
    seed: int | None = None

    def __post_init__(self) -> None:
        v = partial(validate_field, self)
        v("gamma", check_real, 0.0, 1.0)
        v("lr", check_real, 0.0, lo_open=True)
        v("lr_schedule", check_choice, LR_SCHEDULES)
        v("lr_end", check_real, 0.0)
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

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only (what ``torch.load(weights_only=True)`` accepts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DQNConfig:
        """Build from a mapping; an unknown key raises ``ValueError`` listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown DQN hyperparameter(s) {unknown}; allowed keys: {', '.join(sorted(known))}"
            )
        return cls(**values)
