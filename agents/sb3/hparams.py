"""Hyperparameters of the SB3 adapters: declared once, validated with errors that name key, value
and what is allowed, and translated into SB3's constructor arguments.

Also the schedules (learning rate, ε) that can span a horizon of user-steps instead of SB3's
"progress of the current ``learn`` call", so that a run trained in chunks (``learn`` called once per
evaluation period, or resumed from a checkpoint) anneals exactly like one trained in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class InvalidValue(Exception):
    """Raised by a check; carries the description of what is allowed."""

    def __init__(self, allowed: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed


Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: our default, its check, and SB3's default (for the docs)."""

    default: Any
    check: Check
    sb3_default: Any = None
    sb3_name: str | None = None


def plain(value: Any) -> Any:
    """OmegaConf containers (from Hydra) and tuples → plain dicts and lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Check:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    left = "(" if lo_open else "["
    lo_text = "-inf" if lo is None else f"{lo:g}"
    hi_text = "inf" if hi is None else f"{hi:g}"
    allowed = f"a finite number in {left}{lo_text}, {hi_text}{')' if hi is None else ']'}"

    def check(value: Any) -> float:
        if not _is_real(value) or not math.isfinite(float(value)):
            raise InvalidValue(allowed)
        value = float(value)
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise InvalidValue(allowed)
        if hi is not None and value > hi:
            raise InvalidValue(allowed)
        return value

    return check


def integer(lo: int, *, optional: bool = False, also: tuple[int, ...] = ()) -> Check:
    """An integer ``>= lo`` (or one of ``also``; or ``None`` when ``optional``)."""
    allowed = f"an integer >= {lo}"
    if also:
        allowed += " or " + " or ".join(str(a) for a in also)
    if optional:
        allowed += " or null"

    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        if not _is_int(value) or (int(value) < lo and int(value) not in also):
            raise InvalidValue(allowed)
        return int(value)

    return check


def choice(*options: Any) -> Check:
    allowed = "one of " + ", ".join(repr(o) for o in options)

    def check(value: Any) -> Any:
        if isinstance(value, bool) and not any(isinstance(o, bool) for o in options):
            raise InvalidValue(allowed)
        if value not in options:
            raise InvalidValue(allowed)
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidValue("true or false")
    return bool(value)


def hidden_sizes(value: Any) -> list[int]:
    allowed = "a non-empty list of positive integers, e.g. [64, 64]"
    value = plain(value)
    if not isinstance(value, list) or not value:
        raise InvalidValue(allowed)
    if not all(_is_int(v) and int(v) > 0 for v in value):
        raise InvalidValue(allowed)
    return [int(v) for v in value]


def train_freq(value: Any) -> int | list[Any]:
    allowed = "an integer >= 1 (vector steps) or [n >= 1, 'step' | 'episode']"
    value = plain(value)
    if _is_int(value) and int(value) >= 1:
        return int(value)
    if (
        isinstance(value, list)
        and len(value) == 2
        and _is_int(value[0])
        and int(value[0]) >= 1
        and value[1] in ("step", "episode")
    ):
        return [int(value[0]), value[1]]
    raise InvalidValue(allowed)


def device(value: Any) -> str:
    allowed = "'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    if not isinstance(value, str):
        raise InvalidValue(allowed)
    if value in ("auto", "cpu", "cuda"):
        return value
    if value.startswith("cuda:") and value[5:].isdigit():
        return value
    raise InvalidValue(allowed)


def mapping(value: Any) -> dict[str, Any]:
    value = plain(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidValue("a mapping of extra SB3 constructor arguments")
    return value


def validate(owner: str, params: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked and normalised.

    Raises ``ValueError`` naming the owner, key, value and what is allowed (unknown keys list the
    known ones).
    """
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ValueError(
            f"{owner}: unknown hyperparameter(s) {', '.join(unknown)}; allowed keys: "
            f"{', '.join(sorted(params))} (other SB3 constructor arguments go in `sb3_kwargs`)"
        )
    values: dict[str, Any] = {}
    for key, param in params.items():
        value = given.get(key, param.default)
        try:
            values[key] = param.check(plain(value))
        except InvalidValue as err:
            raise ValueError(
                f"{owner}: invalid hyperparameter {key}={value!r}; allowed: {err.allowed}"
            ) from None
    return values


class StepSchedule:
    """Linear from ``start`` to ``end`` over the first ``fraction`` of training, then ``end``.

    Called by SB3 with its ``progress_remaining`` (1 → 0 over the current ``learn`` call). With a
    ``horizon`` (user-steps), progress is instead ``num_timesteps / horizon``: the adapter sets
    ``learn_total`` to the ``num_timesteps`` at which the current ``learn`` call ends (SB3's
    ``_total_timesteps`` under ``reset_num_timesteps=False``), from which
    ``num_timesteps = (1 - progress_remaining) * learn_total``. Picklable (SB3 stores the learning
    rate schedule in its zip).
    """

    def __init__(
        self, start: float, end: float, fraction: float = 1.0, horizon: int | None = None
    ) -> None:
        self.start = float(start)
        self.end = float(end)
        self.fraction = float(fraction)
        self.horizon = horizon
        self.learn_total: int | None = None

    def progress(self, progress_remaining: float) -> float:
        done = 1.0 - float(progress_remaining)
        if self.horizon is not None:
            done = done * float(self.learn_total or 0) / float(self.horizon)
        return done

    def __call__(self, progress_remaining: float) -> float:
        done = self.progress(progress_remaining)
        if self.fraction <= 0.0 or done >= self.fraction:
            return self.end
        return self.start + (self.end - self.start) * max(done, 0.0) / self.fraction

    def __repr__(self) -> str:
        return (
            f"StepSchedule(start={self.start:g}, end={self.end:g}, fraction={self.fraction:g}, "
            f"horizon={self.horizon})"
        )
