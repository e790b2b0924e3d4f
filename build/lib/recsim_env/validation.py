"""The value checkers every config of the project uses: simulator, agents and runner.

One module, so that "what is allowed" is phrased the same way everywhere and a user who mistypes a
Hydra override gets the same kind of message whichever section it is in::

    invalid DQNConfig.gamma=1.5 (allowed: a finite number in [0, 1])

Each checker returns the value normalised to a plain Python type (numpy and OmegaConf scalars are
accepted: sweeps and Optuna hand them over), so configs can be saved as JSON/YAML and compared.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NoReturn, overload

import numpy as np

DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """An invalid configuration value: the message names the key, the value and what is allowed.

    A ``ValueError``, so callers (and Gymnasium's ``make``) that expect one keep working.
    """


def fail(key: str, value: Any, allowed: str) -> NoReturn:
    raise ConfigError(f"invalid {key}={value!r} (allowed: {allowed})")


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number (bools are not numbers here)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _bound(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


@overload
def check_int(
    key: str,
    value: Any,
    lo: int | None = None,
    hi: int | None = None,
    *,
    optional: Literal[False] = False,
    also: tuple[int, ...] = (),
    note: str = "",
) -> int: ...
@overload
def check_int(
    key: str,
    value: Any,
    lo: int | None = None,
    hi: int | None = None,
    *,
    optional: bool,
    also: tuple[int, ...] = (),
    note: str = "",
) -> int | None: ...
def check_int(
    key: str,
    value: Any,
    lo: int | None = None,
    hi: int | None = None,
    *,
    optional: bool = False,
    also: tuple[int, ...] = (),
    note: str = "",
) -> int | None:
    """An integer in ``[lo, hi]`` (or one of ``also``; or ``None`` when ``optional``).

    ``note`` says why the bounds are what they are; it is appended to the error message."""
    if value is None and optional:
        return None
    ok = is_int(value) and (
        int(value) in also or ((lo is None or value >= lo) and (hi is None or value <= hi))
    )
    if not ok:
        if lo is not None and hi is None:
            allowed = f"an integer >= {lo}"
        elif lo is None and hi is None:
            allowed = "an integer"
        else:
            allowed = f"an integer in [{_bound(lo, '-inf')}, {_bound(hi, 'inf')}]"
        allowed += "".join(f" or {a}" for a in also) + (" or null" if optional else "")
        fail(key, value, allowed + (f"; {note}" if note else ""))
    return int(value)


@overload
def check_real(
    key: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: Literal[False] = False,
    note: str = "",
) -> float: ...
@overload
def check_real(
    key: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool,
    note: str = "",
) -> float | None: ...
def check_real(
    key: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
    note: str = "",
) -> float | None:
    """A finite number in ``[lo, hi]``; ``lo_open``/``hi_open`` exclude the bound. ``note`` says
    why the bounds are what they are; it is appended to the error message."""
    if value is None and optional:
        return None
    ok = is_real(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        if lo is not None and hi is None:
            allowed = f"a finite number {'>' if lo_open else '>='} {lo:g}"
        elif lo is None and hi is None:
            allowed = "a finite number"
        else:
            left, right = "(" if lo_open else "[", ")" if hi_open else "]"
            allowed = f"a finite number in {left}{_bound(lo, '-inf')}, {_bound(hi, 'inf')}{right}"
        fail(key, value, allowed + (" or null" if optional else "") + (f"; {note}" if note else ""))
    return float(value)


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):  # numpy bools too
        fail(key, value, "true or false")
    return bool(value)


def check_choice(key: str, value: Any, allowed: Iterable[Any]) -> Any:
    options = tuple(allowed)
    try:
        ok = value in options and not (
            isinstance(value, bool) and not any(isinstance(o, bool) for o in options)
        )
    except TypeError:  # unhashable/uncomparable values (a list where a name is expected)
        ok = False
    if not ok:
        fail(key, value, "one of " + ", ".join(repr(o) for o in options))
    return value


def check_int_list(key: str, value: Any, lo: int = 1) -> list[int]:
    """A non-empty list of integers ``>= lo`` (tuples and OmegaConf lists accepted)."""
    items = (
        list(value)
        if isinstance(value, Sequence | Iterable) and not isinstance(value, str)
        else None
    )
    if not items or not all(is_int(v) and v >= lo for v in items):
        fail(key, value, f"a non-empty list of integers >= {lo}, e.g. [64, 64]")
    return [int(v) for v in items]


def check_device(key: str, value: Any) -> str:
    ok = isinstance(value, str) and (
        value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())
    )
    if not ok:
        fail(key, value, "one of 'auto', 'cpu', 'cuda', 'cuda:<index>'")
    return value


def check_keys(section: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject keys of ``given`` not in ``allowed``, suggesting the closest allowed key."""
    allowed = sorted(allowed)
    for key in given:
        if key not in allowed:
            full = f"{section}.{key}" if section else key
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" in {section}" if section else ""
            raise ConfigError(f"unknown config key {full!r}{hint} allowed keys{where}: {allowed}")


def validate_field(obj: Any, key: str, check: Any, *args: Any, **kwargs: Any) -> None:
    """Check ``obj.<key>`` with ``check`` (one of the ``check_*`` above) and store the normalised
    value back (frozen dataclasses too). Errors name the field as ``ClassName.key``."""
    value = check(f"{type(obj).__name__}.{key}", getattr(obj, key), *args, **kwargs)
    object.__setattr__(obj, key, value)
