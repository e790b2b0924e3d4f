"""``recsim-tune`` search spaces: YAML files of params (float / int / categorical) and fixed
overrides, and how a sampled value is written back as a Hydra override that round-trips exactly."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from experiments.run.config import ConfigError

SPACE_DIR = Path(__file__).resolve().parent / "spaces"  # outside conf/: no recsim-train group
PARAM_TYPES = ("float", "int", "categorical")


# ---------------------------------------------------------------------------------------- space
@dataclass(frozen=True)
class Param:
    """One searched config key."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        where = f"search space param {self.name!r}"
        if self.type not in PARAM_TYPES:
            raise ConfigError(f"{where}: type={self.type!r}, expected one of {list(PARAM_TYPES)}")
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError(f"{where}: a categorical param needs a non-empty 'choices' list")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{where}: a {self.type} param needs 'low' and 'high'")
        if not self.low < self.high:
            raise ConfigError(f"{where}: low={self.low} must be < high={self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{where}: log=true needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ConfigError(f"{where}: 'step' and log=true cannot be combined")

    def suggest(self, trial: Any) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=step
            )
        # Optuna stores only None/bool/int/float/str: a structured choice (a list such as
        # hidden_sizes [64, 64]) is offered as its override text and handed back as the structure,
        # so that it reaches the config as a list, not as the string '[64,64]'
        encoded = [_primitive(c) for c in self.choices]
        return self.choices[encoded.index(trial.suggest_categorical(self.name, encoded))]

    def bounds(self) -> list[Any]:
        """The extreme values (for checking a space before running it)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


@dataclass(frozen=True)
class SearchSpace:
    params: dict[str, Param]
    overrides: tuple[str, ...] = ()
    metric: str | None = None
    direction: str | None = None
    source: str = ""

    @classmethod
    def load(cls, space: str | Path) -> SearchSpace:
        """``space``: a name in ``experiments/tune/spaces/`` or the path of a YAML file."""
        path = Path(space)
        if not path.suffix and not path.exists():
            path = SPACE_DIR / f"{space}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))
            raise ConfigError(f"no search space {str(space)!r}: give a file or one of {known}")
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        return cls.from_dict(node, source=str(path))

    @classmethod
    def from_dict(cls, node: Any, source: str = "") -> SearchSpace:
        if not isinstance(node, Mapping):
            raise ConfigError(f"search space {source}: expected a mapping")
        allowed = {"params", "overrides", "metric", "direction"}
        unknown = set(node) - allowed
        if unknown:
            raise ConfigError(
                f"search space {source}: unknown keys {sorted(unknown)}, allowed: {sorted(allowed)}"
            )
        params = {}
        for name, spec in (node.get("params") or {}).items():
            if not isinstance(spec, Mapping):
                raise ConfigError(f"search space param {name!r}: expected a mapping, got {spec!r}")
            spec = dict(spec)
            unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
            if unknown:
                raise ConfigError(f"search space param {name!r}: unknown keys {sorted(unknown)}")
            kind = spec.get("type", "categorical" if "choices" in spec else "float")
            choices = tuple(spec.get("choices") or ())
            params[str(name)] = Param(
                name=str(name),
                type=str(kind),
                low=_number(name, "low", spec.get("low")),
                high=_number(name, "high", spec.get("high")),
                log=bool(spec.get("log", False)),
                step=_number(name, "step", spec.get("step")),
                choices=choices,
            )
        overrides = node.get("overrides") or []
        if isinstance(overrides, str) or not isinstance(overrides, list):
            raise ConfigError(f"search space {source}: 'overrides' must be a list of key=value")
        direction = node.get("direction")
        if direction not in (None, "maximize", "minimize"):
            raise ConfigError(f"search space {source}: direction={direction!r}")
        return cls(
            params=params,
            overrides=tuple(str(o) for o in overrides),
            metric=node.get("metric"),
            direction=direction,
            source=source,
        )


def _number(name: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    try:  # YAML 1.1 reads 1e-5 (no dot) as a string
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"search space param {name!r}: {key}={value!r} is not a number") from None


def _primitive(choice: Any) -> Any:
    """A categorical choice as Optuna can store it: itself, or its override text."""
    return (
        choice
        if choice is None or isinstance(choice, bool | int | float | str)
        else _override_value(choice)
    )


_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+-]+$")


def _override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back (floats round-trip exactly)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | np.integer | np.floating):
        return repr(float(value)) if isinstance(value, float | np.floating) else str(int(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_override_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and _parses_back(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parses_back(text: str) -> bool:
    """Whether Hydra reads ``text`` unquoted as this very string (not ``true``, ``1``, ``null``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(f"k={text}").value() == text
    except Exception:
        return False
