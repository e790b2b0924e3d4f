"""The :class:`Calibration` bundle: its arrays, their checks, and its files (numpy only).

Why a bundle of plain arrays: ``recsim-calibrate`` (``recsim_env.calibrate``, pandas / scikit-learn)
fits the simulator to a log once; the env that uses the result must run on numpy alone and must be
able to read a calibration written by someone else without running their code. So a calibration is

* ``calibration.npz`` — the arrays, written with ``np.savez`` and read with ``allow_pickle=False``
  (an object array or a pickle planted in its place is refused, never executed);
* ``calibration.json`` — name, fitted ``params``, the fit ``report``, ``window_ticks``, the arrays'
  shapes and a format version;

and :meth:`Calibration.load` checks every shape, dtype, range and JSON type, with a
:class:`~recsim_env.validation.ConfigError` naming the field.

Resolving a ``calibration=`` value (a directory or a known name) and the synthetic test bundle live
in :mod:`recsim_env.grounding`, which re-exports everything public here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recsim_env.validation import ConfigError, fail, is_int

__all__ = ["FORMAT", "VERSION", "Calibration"]

FORMAT = "recsim-calibration"
VERSION = 1
NPZ, JSON = "calibration.npz", "calibration.json"
QA_CLIP = 3.0  # |quality|, |appeal| (as recsim_env.catalogue.QA_CLIP)
LENGTH_MIN, LENGTH_MAX = 0.5, 1.5  # as recsim_env.catalogue
BIRTH_MAX = 10**12  # |birth| in ticks (recsim_env.config.COUNT_MAX)
WINDOW_TICKS_MAX = 10**12
# tolerated rounding of "sums to 1" (float32 topic rows; the activity's cdf ends at exactly 1)
TOPIC_SUM_TOL = 1e-4
ACTIVITY_SUM_TOL = 1e-6
# params a calibration may not set: the catalogue fixes the first two, the third is itself
_NOT_PARAMS = ("num_items", "num_topics", "calibration")

# the arrays: name -> (dtype kind(s) accepted, stored dtype, per-axis size names)
_ARRAYS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "item_ids": ("iuU", None, ("M",)),
    "item_topics": ("f", np.float32, ("M", "K")),
    "item_quality": ("f", np.float32, ("M",)),
    "item_appeal": ("f", np.float32, ("M",)),
    "item_length": ("f", np.float32, ("M",)),
    "item_birth": ("iu", np.int64, ("M",)),
    "user_ids": ("iuU", None, ("N",)),
    "user_interest": ("f", np.float32, ("N", "K")),
    "user_activity": ("f", np.float64, ("N",)),
    "trajectory": ("f", np.float32, ("T", "K")),
}


class _Summary(str):
    """A value shown unquoted in an error message (an array's shape and range, not its repr)."""

    def __repr__(self) -> str:
        return str(self)


def _describe(a: np.ndarray) -> _Summary:
    text = f"<array {a.shape} {a.dtype}"
    if a.size and a.dtype.kind in "fiu":
        with np.errstate(invalid="ignore"):
            text += f" in [{np.nanmin(a):.4g}, {np.nanmax(a):.4g}]"
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            text += ", not finite"
    return _Summary(text + ">")


def _field(name: str) -> str:
    return f"Calibration.{name}"


def _check_array(name: str, value: Any) -> np.ndarray:
    kinds, dtype, axes = _ARRAYS[name]
    a = np.asarray(value)
    if a.dtype.kind not in kinds or a.dtype.hasobject:
        allowed = {"f": "floating point", "iu": "integer", "iuU": "integer or unicode string"}
        fail(_field(name), _describe(a), f"a {len(axes)}-d {allowed[kinds]} array")
    if a.ndim != len(axes) or 0 in a.shape:
        fail(_field(name), _describe(a), f"a non-empty array of shape ({', '.join(axes)})")
    if dtype is not None:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            fail(_field(name), _describe(a), "finite numbers")
        if dtype is np.int64 and a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max:
            fail(_field(name), _describe(a), "integers that fit int64")
        a = a.astype(dtype)
    elif a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max:
            fail(_field(name), _describe(a), "integer ids that fit int64, or strings")
        a = a.astype(np.int64)
    return np.ascontiguousarray(a)


def _check_range(name: str, a: np.ndarray, lo: float, hi: float) -> None:
    if a.min() < lo or a.max() > hi:
        fail(_field(name), _describe(a), f"values in [{lo:g}, {hi:g}]")


def _check_unique(name: str, a: np.ndarray) -> None:
    if len(np.unique(a)) != len(a):
        values, counts = np.unique(a, return_counts=True)
        fail(
            _field(name),
            _describe(a),
            f"distinct ids (repeated: {values[counts > 1][:5].tolist()})",
        )


def _plain_json(name: str, value: Any) -> Any:
    """``value`` as JSON-able plain data (numpy scalars → Python); anything else is an error."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if is_int(value):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                fail(f"{name} key", k, "strings (JSON object keys)")
            out[k] = _plain_json(f"{name}.{k}", v)
        return out
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain_json(f"{name}[{i}]", v) for i, v in enumerate(value)]
    fail(
        name,
        _Summary(f"<{type(value).__name__}>"),
        "JSON data: dict, list, str, number, bool, null",
    )


@dataclass(frozen=True, eq=False)  # eq by identity: arrays have no truth value
class Calibration:
    """The fitted simulator: real items and users, the population's trajectory, fitted parameters.

    Construction validates every field and stores it with the dtype below (read-only arrays), so
    a fit cannot hand the simulator something it would turn into NaN; :meth:`load` goes through the
    same checks, and ``load(save(c))`` has the same arrays and :attr:`fingerprint` as ``c``.
    """

    name: str
    item_ids: np.ndarray  # (M,) ids as in the log (int64, or unicode for string ids)
    item_topics: np.ndarray  # (M, K) float32, non-negative rows summing to 1
    item_quality: np.ndarray  # (M,) float32 in [-3, 3]
    item_appeal: np.ndarray  # (M,) float32 in [-3, 3]
    item_length: np.ndarray  # (M,) float32 in [0.5, 1.5]
    item_birth: np.ndarray  # (M,) int64 ticks; <= 0 for items present when the clock starts
    user_ids: np.ndarray  # (N,)
    user_interest: np.ndarray  # (N, K) float32 in [-1, 1]
    user_activity: np.ndarray  # (N,) float64 >= 0, sums to 1: P(a new simulated user is this one)
    trajectory: np.ndarray  # (T, K) float32 in [-1, 1]: population-mean interest per window
    window_ticks: int  # simulator ticks per trajectory window
    params: dict  # fitted SimConfig fields -> value
    report: dict  # per fitted quantity: from what, how, estimate; "not_identified": {...}

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            fail(_field("name"), self.name, "a non-empty string")
        arrays = {name: _check_array(name, getattr(self, name)) for name in _ARRAYS}
        sizes: dict[str, int] = {}
        for name, (_, _, axes) in _ARRAYS.items():
            for axis, n in zip(axes, arrays[name].shape, strict=True):
                if sizes.setdefault(axis, n) != n:
                    first = next(a for a, spec in _ARRAYS.items() if axis in spec[2])
                    fail(
                        _field(name),
                        _describe(arrays[name]),
                        f"shape ({', '.join(axes)}) with {axis}={sizes[axis]} as in {first}",
                    )
        _check_unique("item_ids", arrays["item_ids"])
        _check_unique("user_ids", arrays["user_ids"])
        topics = arrays["item_topics"]
        _check_range("item_topics", topics, 0.0, 1.0)  # observed as is: inside the obs space
        if np.abs(topics.sum(axis=1) - 1.0).max() > TOPIC_SUM_TOL:
            fail(
                _field("item_topics"),
                _describe(topics),
                f"non-negative rows that sum to 1 (within {TOPIC_SUM_TOL:g})",
            )
        for name in ("item_quality", "item_appeal"):
            _check_range(name, arrays[name], -QA_CLIP, QA_CLIP)
        _check_range("item_length", arrays["item_length"], LENGTH_MIN, LENGTH_MAX)
        _check_range("item_birth", arrays["item_birth"], -BIRTH_MAX, BIRTH_MAX)
        _check_range("user_interest", arrays["user_interest"], -1.0, 1.0)
        _check_range("trajectory", arrays["trajectory"], -1.0, 1.0)
        activity = arrays["user_activity"]
        if activity.min() < 0 or abs(activity.sum() - 1.0) > ACTIVITY_SUM_TOL:
            fail(
                _field("user_activity"),
                _describe(activity),
                f"non-negative, summing to 1 (within {ACTIVITY_SUM_TOL:g})",
            )
        for name, value in arrays.items():
            value.setflags(write=False)  # shared by every env of the process: read-only
            object.__setattr__(self, name, value)
        if not is_int(self.window_ticks) or not 1 <= self.window_ticks <= WINDOW_TICKS_MAX:
            fail(
                _field("window_ticks"), self.window_ticks, f"an integer in [1, {WINDOW_TICKS_MAX}]"
            )
        object.__setattr__(self, "window_ticks", int(self.window_ticks))
        object.__setattr__(self, "params", self._check_params(self.params))
        if not isinstance(self.report, Mapping):
            fail(_field("report"), self.report, "a dict (JSON object)")
        object.__setattr__(self, "report", _plain_json(_field("report"), self.report))

    def _check_params(self, params: Any) -> dict[str, Any]:
        """Only SimConfig fields, with values the simulator accepts for this catalogue."""
        from recsim_env.config import SimConfig  # late import: config imports this module lazily

        if not isinstance(params, Mapping):
            fail(_field("params"), params, "a dict of SimConfig fields")
        known = sorted(f.name for f in fields(SimConfig) if f.name not in _NOT_PARAMS)
        for key in params:
            if key not in known:
                fail(_field(f"params.{key}"), params[key], f"a key in {known}")
        plain = _plain_json(_field("params"), params)
        if plain.get("item_churn", 0.0) not in (0, 0.0):
            fail(_field("params.item_churn"), plain["item_churn"], "0: the catalogue is the log's")
        try:  # every value in its range (num_candidates <= num_items, ...)
            # the default num_candidates (20) may exceed a tiny catalogue: make kwargs can set it
            candidates = {"num_candidates": min(20, self.num_items)}
            SimConfig(
                num_items=self.num_items, num_topics=self.num_topics, **{**candidates, **plain}
            )
        except ConfigError as err:
            raise ConfigError(f"{_field('params')}: {err}") from err
        return plain

    # ------------------------------------------------------------------------------ sizes
    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_topics(self) -> int:
        return self.item_topics.shape[1]

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_windows(self) -> int:
        return len(self.trajectory)

    @cached_property
    def user_cdf(self) -> np.ndarray:
        """Cumulative ``user_activity`` (last entry exactly 1): a uniform ``u`` picks user
        ``searchsorted(cdf, u, side="right")``."""
        cdf = np.cumsum(self.user_activity)
        cdf[-1] = 1.0
        cdf.setflags(write=False)
        return cdf

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the arrays, ``window_ticks`` and ``params``: a saved env state records it, so
        that it is never resumed on another calibration."""
        h = hashlib.sha256()
        for name in _ARRAYS:
            a = getattr(self, name)
            h.update(f"{name}{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        h.update(json.dumps([self.window_ticks, self.params], sort_keys=True).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``<path>/calibration.npz`` (arrays only) and ``<path>/calibration.json``; each file
        atomically (a temporary file, then renamed). Returns the directory."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        document = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "window_ticks": self.window_ticks,
            "shapes": {name: list(a.shape) for name, a in arrays.items()},
            "params": self.params,
            "report": self.report,
        }
        _atomic_write(directory / NPZ, lambda f: np.savez(f, **arrays))
        text = json.dumps(document, indent=2, sort_keys=False) + "\n"
        _atomic_write(directory / JSON, lambda f: f.write(text.encode("utf-8")))
        return directory

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a directory written by :meth:`save` (or either of its two files). Never unpickles:
        a calibration from someone else is data. Every problem is a ``ConfigError`` naming the file
        and the field; a missing directory or file is a ``FileNotFoundError``."""
        path = Path(path)
        directory = path.parent if path.name in (NPZ, JSON) and path.is_file() else path
        json_path, npz_path = directory / JSON, directory / NPZ
        for p in (json_path, npz_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"no calibration at {directory}: {p.name} is missing (a calibration is a "
                    f"directory written by Calibration.save: {JSON} + {NPZ})"
                )
        try:
            document = json.loads(json_path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{json_path}: not a calibration ({err})") from err
        try:
            return cls._from_files(document, npz_path)
        except ConfigError as err:
            raise ConfigError(f"{directory}: {err}") from err

    @classmethod
    def _from_files(cls, document: Any, npz_path: Path) -> Calibration:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            fail(JSON, _Summary("<not a calibration>"), f"a JSON object with format={FORMAT!r}")
        if document.get("version") != VERSION:
            fail(f"{JSON}.version", document.get("version"), f"{VERSION} (this code's format)")
        types = {
            "name": str,
            "window_ticks": int,
            "shapes": dict,
            "params": dict,
            "report": dict,
        }
        for key, kind in types.items():
            value = document.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                fail(f"{JSON}.{key}", value, f"a JSON {kind.__name__}")
        shapes = document["shapes"]
        if sorted(shapes) != sorted(_ARRAYS):
            fail(f"{JSON}.shapes", shapes, f"the shapes of exactly {sorted(_ARRAYS)}")
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                if not isinstance(npz, np.lib.npyio.NpzFile):
                    fail(NPZ, _Summary("<a bare .npy array>"), f"an npz with {sorted(_ARRAYS)}")
                if sorted(npz.files) != sorted(_ARRAYS):
                    fail(f"{NPZ} members", npz.files, f"exactly {sorted(_ARRAYS)}")
                arrays = {name: npz[name] for name in _ARRAYS}
        except ConfigError:
            raise
        except Exception as err:  # a pickle, an object array, a damaged zip: never executed
            reason = (
                "it holds pickled data, which is never loaded because it can execute code"
                if "pickle" in str(err).lower()
                else f"{type(err).__name__}: {err}"
            )
            raise ConfigError(f"{npz_path}: unreadable calibration arrays ({reason})") from err
        for name, a in arrays.items():
            if list(a.shape) != shapes[name]:
                fail(f"{NPZ}:{name}", _describe(a), f"the shape {shapes[name]} in {JSON}")
        return cls(
            name=document["name"],
            window_ticks=document["window_ticks"],
            params=document["params"],
            report=document["report"],
            **arrays,
        )


def _atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
