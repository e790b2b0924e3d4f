"""What the configs of our Q-learners (``DQNConfig``, ``PQNConfig``) share: the allowed values of
their common keys and the conversion to and from plain dicts (what checkpoints store).

Torch-free on purpose: a config can be read (by the Hydra config registration, by a tool listing
defaults) without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, TypeVar

from recsim_env.validation import ConfigError

NETWORKS = ("candidate", "mlp")
LR_SCHEDULES = ("constant", "linear")
TD_LOSSES = ("huber", "mse")

C = TypeVar("C", bound="QConfig")


class QConfig:
    """Mixin of a hyperparameter dataclass: ``to_dict`` / ``from_dict`` with an error that names
    the unknown keys and lists the known ones (``label`` names the agent in it)."""

    label: ClassVar[str] = "Q-learning"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only (what ``torch.load(weights_only=True)`` accepts)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build from a mapping; an unknown key raises ``ValueError`` listing the known ones."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown {cls.label} hyperparameter(s) {unknown}; allowed keys: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**values)
