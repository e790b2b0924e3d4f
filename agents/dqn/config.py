"""Typed, validated hyperparameters of :class:`agents.dqn.DQNAgent`.

Every value is checked on construction; an invalid one raises ``ValueError`` naming the key, the
value and what is allowed, so a typo in a Hydra override fails at once instead of hours into a run.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

NETWORKS = ("candidate", "mlp")
LR_SCHEDULES = ("constant", "linear")
DEVICES = ("auto", "cpu", "cuda")


_FLOAT_KEYS = frozenset(
    {"gamma", "lr", "lr_end", "max_grad_norm", "epsilon_start", "epsilon_end",
     "exploration_fraction", "tau"}
)  # fmt: skip


def _invalid(key: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"DQNConfig.{key}={value!r} is invalid: allowed {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


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
        self._check_real("gamma", lo=0.0, hi=1.0)
        self._check_real("lr", lo=0.0, lo_open=True)
        self._check_choice("lr_schedule", LR_SCHEDULES)
        self._check_real("lr_end", lo=0.0)
        if self.max_grad_norm is not None:
            self._check_real("max_grad_norm", lo=0.0, lo_open=True, none_ok=True)
        self._check_int("batch_size", lo=1)
        for key in ("epsilon_start", "epsilon_end", "exploration_fraction"):
            self._check_real(key, lo=0.0, hi=1.0)
        self._check_int("buffer_size", lo=1)
        if self.buffer_size < self.batch_size:
            raise _invalid(
                "buffer_size", self.buffer_size, f"an integer >= batch_size ({self.batch_size})"
            )
        self._check_int("n_step", lo=1)
        self._check_bool("double")
        self._check_bool("dueling")
        self._check_real("tau", lo=0.0, hi=1.0, lo_open=True)
        self._check_int("target_update_interval", lo=1)
        self._check_int("learning_starts", lo=0)
        self._check_int("train_freq", lo=1)
        if not (
            _is_int(self.gradient_steps) and (self.gradient_steps >= 1 or self.gradient_steps == -1)
        ):
            raise _invalid("gradient_steps", self.gradient_steps, "an integer >= 1, or -1")
        if self.total_steps is not None:
            self._check_int("total_steps", lo=1, none_ok=True)
        self._check_choice("network", NETWORKS)
        self._check_hidden_sizes()
        self._check_device()
        self._check_bool("cuda_graphs")
        if self.torch_threads is not None:
            self._check_int("torch_threads", lo=1, none_ok=True)
        if self.seed is not None:
            self._check_int("seed", lo=0, none_ok=True)
        # normalise numpy / OmegaConf scalars to plain Python types (checkpoints, YAML, equality)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _FLOAT_KEYS and value is not None:
                setattr(self, f.name, float(value))
            elif _is_int(value):
                setattr(self, f.name, int(value))

    # ------------------------------------------------------------------ checks
    def _check_real(
        self,
        key: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        none_ok: bool = False,
    ) -> None:
        value = getattr(self, key)
        ok = _is_real(value)
        if ok and lo is not None:
            ok = value > lo if lo_open else value >= lo
        if ok and hi is not None:
            ok = value <= hi
        if not ok:
            left = "(" if lo_open else "["
            rng = f"{left}{lo}, {hi}]" if hi is not None else f"{'> ' if lo_open else '>= '}{lo}"
            allowed = f"a finite number {'in ' if hi is not None else ''}{rng}"
            raise _invalid(key, value, allowed + (" or None" if none_ok else ""))

    def _check_int(self, key: str, *, lo: int, none_ok: bool = False) -> None:
        value = getattr(self, key)
        if not (_is_int(value) and value >= lo):
            raise _invalid(key, value, f"an integer >= {lo}" + (" or None" if none_ok else ""))

    def _check_bool(self, key: str) -> None:
        value = getattr(self, key)
        if not isinstance(value, bool):
            raise _invalid(key, value, "true or false")

    def _check_choice(self, key: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, key)
        if value not in choices:
            raise _invalid(key, value, "one of " + ", ".join(repr(c) for c in choices))

    def _check_hidden_sizes(self) -> None:
        value = self.hidden_sizes
        try:
            sizes = list(value)  # accepts tuples and OmegaConf ListConfig
        except TypeError:
            sizes = None
        if isinstance(value, str) or not sizes or not all(_is_int(s) and s >= 1 for s in sizes):
            raise _invalid("hidden_sizes", value, "a non-empty list of integers >= 1")
        self.hidden_sizes = [int(s) for s in sizes]

    def _check_device(self) -> None:
        value = self.device
        ok = isinstance(value, str) and (
            value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())
        )
        if not ok:
            raise _invalid("device", value, "one of 'auto', 'cpu', 'cuda', 'cuda:<index>'")

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
            raise ValueError(
                f"unknown DQN hyperparameter(s) {unknown}; allowed keys: {', '.join(sorted(known))}"
            )
        return cls(**values)
