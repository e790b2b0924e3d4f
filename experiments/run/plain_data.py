"""Nested state as plain data: a JSON skeleton plus a ``.npz`` of its arrays — never pickle.

A checkpoint must not execute code when it is read, and must stay readable by tools that are not
Python. :func:`save_plain` takes nested dicts (string keys), lists, tuples, scalars, numpy arrays
and scalars and torch tensors; arrays go into the ``.npz`` (loaded with ``allow_pickle=False``) and
are replaced in the JSON by ``{"__array__": "<name>"}``. Tuples, numpy scalars and tensors are
tagged so that :func:`load_plain` gives back the same types (``random.setstate`` wants tuples, an
info dict's numpy scalars stay numpy). Anything else (an object array, a custom class) is refused
with the path of the offending value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

ARRAY, TUPLE, SCALAR, TENSOR, FLOAT = (
    "__array__",
    "__tuple__",
    "__scalar__",
    "__tensor__",
    "__float__",
)
_TAGS = {ARRAY, TUPLE, SCALAR, TENSOR, FLOAT}


class NotPlainData(TypeError):
    """A value that cannot be stored without pickle."""


def save_plain(obj: Any, json_path: str | Path, npz_path: str | Path) -> None:
    """Write ``obj`` as ``json_path`` + ``npz_path`` (both fsynced; the caller renames the dir)."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = _encode(obj, arrays, "state")
    with open(json_path, "w") as f:
        json.dump(skeleton, f, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    with open(npz_path, "wb") as f:
        np.savez(f, allow_pickle=False, **arrays)
        f.flush()
        os.fsync(f.fileno())


def is_plain(obj: Any) -> bool:
    """Whether ``obj`` can be stored by :func:`save_plain` (nothing is written)."""
    try:
        _encode(obj, {}, "value")
    except NotPlainData:
        return False
    return True


def load_plain(json_path: str | Path, npz_path: str | Path) -> Any:
    with open(json_path) as f:
        skeleton = json.load(f)
    with np.load(npz_path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return _decode(skeleton, arrays)


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):  # JSON has no NaN/inf
            return {FLOAT: repr(obj)}
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise NotPlainData(f"{where}: an object array cannot be stored without pickle")
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {ARRAY: name}
    if isinstance(obj, np.generic):
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj)
        return {SCALAR: name}
    if type(obj).__module__.startswith("torch") and type(obj).__name__ == "Tensor":
        name = f"a{len(arrays)}"
        arrays[name] = obj.detach().cpu().numpy()
        return {TENSOR: name}
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str) or key in _TAGS:
                raise NotPlainData(f"{where}: key {key!r} is not a plain string key")
            out[key] = _encode(value, arrays, f"{where}.{key}")
        return out
    if isinstance(obj, tuple):
        return {TUPLE: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise NotPlainData(f"{where}: a {type(obj).__qualname__} cannot be stored without pickle")


def _decode(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == ARRAY:
            return arrays[value]
        if tag == SCALAR:
            return arrays[value][()]
        if tag == TUPLE:
            return tuple(_decode(v, arrays) for v in value)
        if tag == FLOAT:
            return float(value)
        if tag == TENSOR:
            import torch

            return torch.from_numpy(np.array(arrays[value]))
    return {k: _decode(v, arrays) for k, v in obj.items()}
