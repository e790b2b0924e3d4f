"""Typed, validated hyperparameters of :class:`agents.pqn.PQNAgent`.

Every value is checked on construction with the project's shared checkers; an invalid one raises
``ValueError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from recsim_env.config import check_choice, check_float, check_int

NETWORKS = ("candidate", "mlp")
LR_SCHEDULES = ("constant", "linear")
LOSSES = ("mse", "huber")

_FLOAT_KEYS = frozenset(
    {"gamma", "td_lambda", "lr", "lr_end", "max_grad_norm", "epsilon_start", "epsilon_end",
     "exploration_fraction"}
)  # fmt: skip


def _name(key: str) -> str:
    return f"PQNConfig.{key}"


def _plain(value: Any) -> Any:
    """numpy / OmegaConf scalars → Python ``int`` / ``float`` (bools are left alone)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


@dataclass
class PQNConfig:
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

    # --- objective
    gamma: float = 0.99
    td_lambda: float = 0.65  # λ of the Q(λ) targets: 0 = one-step Q-learning, 1 = Monte Carlo
    loss: str = "mse"  # mse (½ squared TD error, as PQN) | huber (δ = 1, as our DQN)
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
    # --- runtime
    device: str = "auto"  # auto | cpu | cuda | cuda:<index>
    torch_threads: int | None = 1  # None: leave torch's setting alone
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _plain(getattr(self, f.name))
            if f.name in _FLOAT_KEYS and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            setattr(self, f.name, value)
        check_float(_name("gamma"), self.gamma, 0.0, 1.0)
        check_float(_name("td_lambda"), self.td_lambda, 0.0, 1.0)
        check_choice(_name("loss"), self.loss, LOSSES)
        check_float(_name("lr"), self.lr, 0.0, lo_open=True)
        check_choice(_name("lr_schedule"), self.lr_schedule, LR_SCHEDULES)
        check_float(_name("lr_end"), self.lr_end, 0.0)
        if self.max_grad_norm is not None:
            check_float(_name("max_grad_norm"), self.max_grad_norm, 0.0, lo_open=True)
        check_int(_name("rollout_steps"), self.rollout_steps, 1)
        check_int(_name("num_epochs"), self.num_epochs, 1)
        check_int(_name("num_minibatches"), self.num_minibatches, 1)
        check_int(_name("minibatch_size"), self.minibatch_size, 1)
        for key in ("epsilon_start", "epsilon_end", "exploration_fraction"):
            check_float(_name(key), getattr(self, key), 0.0, 1.0)
        if self.total_steps is not None:
            check_int(_name("total_steps"), self.total_steps, 1)
        check_choice(_name("network"), self.network, NETWORKS)
        self._check_hidden_sizes()
        if not isinstance(self.layer_norm, bool):
            raise ValueError(
                f"invalid {_name('layer_norm')}={self.layer_norm!r}: expected true or false"
            )
        self._check_device()
        if self.torch_threads is not None:
            check_int(_name("torch_threads"), self.torch_threads, 1)
        if self.seed is not None:
            check_int(_name("seed"), self.seed, 0)

    def _check_hidden_sizes(self) -> None:
        value = self.hidden_sizes
        try:
            sizes = [_plain(s) for s in value] if not isinstance(value, str | bytes) else None
        except TypeError:  # not iterable
            sizes = None
        ok = bool(sizes) and all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
        if not ok or min(sizes) < 1:  # type: ignore[type-var, arg-type]
            raise ValueError(
                f"invalid {_name('hidden_sizes')}={value!r}: expected a non-empty list of "
                f"integers >= 1"
            )
        self.hidden_sizes = list(sizes)  # type: ignore[arg-type]

    def _check_device(self) -> None:
        value = self.device
        ok = isinstance(value, str) and (
            value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
        )
        if not ok:
            check_choice(_name("device"), value, ("auto", "cpu", "cuda", "cuda:<index>"))

    def minibatches(self, transitions: int) -> int:
        """Minibatches per pass over a rollout of ``transitions`` (see the class doc)."""
        return max(1, min(self.num_minibatches, transitions // self.minibatch_size))

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only (what ``torch.load(weights_only=True)`` accepts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PQNConfig:
        """Build from a mapping; an unknown key raises ``ValueError`` listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown PQN hyperparameter(s) {unknown}; allowed keys: {', '.join(sorted(known))}"
            )
        return cls(**values)
