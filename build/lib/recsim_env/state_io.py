"""Checkpoint files that never execute code when read: plain data trees, no pickle.

Why: a pickle runs whatever its author put in it when it is loaded, so a checkpoint directory from
someone else (a shared run dir, a downloaded result) could run code on ``resume``. The project's own
state (the simulator's ``state_dict()``, the baseline agents, the runner's bookkeeping) is only ever
a *plain data tree*:

* ``dict`` (keys ``str`` or ``int``), ``list``, ``tuple``;
* ``str``, ``int`` (any size: numpy's PCG64 state holds 128-bit integers), ``float`` (NaN and ±inf
  too), ``bool``, ``None``;
* numpy arrays of a non-object dtype, and numpy scalars (``np.float32(1.5)``: kept with their dtype).

So a numpy RNG's ``bit_generator.state`` is such a tree, and ``load_tree(save_tree(...))`` gives back
an equal tree with the same types (tuples stay tuples, dtypes and shapes are kept).

The file is one ``.npz`` (a zip of ``.npy`` files, read with ``allow_pickle=False``): every array is
a member of its own, and the structure with all scalars is a JSON document in the member ``tree``
(arrays appear in it as references). Object arrays are refused when saving and cannot be read back.
Writes are atomic (a temporary file, fsynced, then renamed over ``path``), so a crash never leaves a
half-written file at ``path``.

API::

    save_tree(path, tree)   # TypeError naming the offending entry (e.g. "state.users[2]")
    tree = load_tree(path)  # CheckpointError (a ValueError) naming the file when it is unreadable

A missing file raises ``FileNotFoundError``; any other problem reading it (truncated, not written
by ``save_tree``, a pickle planted in its place, malformed structure) raises
:class:`CheckpointError`, so callers can fall back to an older checkpoint on exactly that.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "recsim-state-tree"
VERSION = 1
_TREE = "tree"  # the npz member that holds the JSON structure
# Markers of the JSON encoding: a one-key JSON object whose key is one of these is not a dict.
_ARRAY, _SCALAR, _TUPLE, _DICT = "__array__", "__scalar__", "__tuple__", "__dict__"
_MARKERS = frozenset((_ARRAY, _SCALAR, _TUPLE, _DICT))

__all__ = ["CheckpointError", "is_plain", "load_tree", "save_tree"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back (truncated, corrupt, not ours); names the file."""


# ------------------------------------------------------------------------------------------ save
def save_tree(path: str | os.PathLike[str], tree: Any) -> Path:
    """Write ``tree`` (a plain data tree, see the module docstring) atomically to ``path``.

    ``path`` is used exactly as given (no suffix is added). Raises ``TypeError`` naming the first
    entry that is not plain data, before anything is written. Returns the path.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    encoded = _encode(tree, arrays, "tree")
    document = json.dumps({"format": FORMAT, "version": VERSION, "tree": encoded})
    members = {_TREE: np.frombuffer(document.encode("utf-8"), np.uint8), **arrays}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **members)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and type(value) in (int, float):
        return value
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: arrays of dtype object cannot be saved (only plain data)")
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(value)
        return {_ARRAY if isinstance(value, np.ndarray) else _SCALAR: name}
    if isinstance(value, tuple) and type(value) is tuple:
        return {_TUPLE: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list) and type(value) is list:
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and type(value) is dict:
        for key in value:
            if not (isinstance(key, str) or (isinstance(key, int) and type(key) is int)):
                raise TypeError(f"{where}: dict key {key!r} is not a str or int")
        items = {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}
        plain = all(isinstance(k, str) for k in items) and not (
            len(items) == 1 and next(iter(items)) in _MARKERS
        )
        return items if plain else {_DICT: [[k, v] for k, v in items.items()]}
    raise TypeError(
        f"{where}: {type(value).__qualname__} is not plain data (allowed: dict, list, tuple, str, "
        "int, float, bool, None, numpy arrays and scalars)"
    )


def is_plain(value: Any) -> bool:
    """Whether :func:`save_tree` can store ``value`` (nothing is written)."""
    try:
        _encode(value, {}, "value")
    except TypeError:
        return False
    return True


# ------------------------------------------------------------------------------------------ load
def load_tree(path: str | os.PathLike[str]) -> Any:
    """Read a file written by :func:`save_tree`; never unpickles anything.

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`CheckpointError` (naming
    the file and the reason) if it cannot be read as such a file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path}: not a checkpoint (a bare .npy array)")
            if _TREE not in npz.files:
                raise CheckpointError(f"{path}: not a checkpoint written by save_tree (no tree)")
            document = json.loads(bytes(npz[_TREE]).decode("utf-8"))
            if (
                not isinstance(document, dict)
                or document.get("format") != FORMAT
                or "tree" not in document
            ):
                raise CheckpointError(f"{path}: not a checkpoint written by save_tree")
            if document.get("version") != VERSION:
                raise CheckpointError(
                    f"{path}: checkpoint format version {document.get('version')!r}, "
                    f"this code reads version {VERSION}"
                )
            return _decode(document["tree"], npz, path)
    except CheckpointError:
        raise
    except Exception as err:  # zip/npy/JSON/decoding errors of a damaged or foreign file
        raise CheckpointError(f"{path}: unreadable checkpoint ({_reason(path, err)})") from err


def _reason(path: Path, err: Exception) -> str:
    if _looks_like_pickle(path):
        return "it is a pickle; pickles are never loaded because they can execute code"
    if isinstance(err, zipfile.BadZipFile | EOFError):
        return f"truncated or not a zip: {err}"
    return f"{type(err).__name__}: {err}"


def _looks_like_pickle(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode


def _decode(node: Any, npz: Any, path: Path) -> Any:
    if node is None or isinstance(node, bool | str | int | float):
        return node
    if isinstance(node, list):
        return [_decode(v, npz, path) for v in node]
    if not isinstance(node, dict):
        raise CheckpointError(f"{path}: malformed tree node {node!r}")
    if len(node) == 1:
        ((marker, payload),) = node.items()
        if marker in (_ARRAY, _SCALAR):
            if not isinstance(payload, str) or payload == _TREE or payload not in npz.files:
                raise CheckpointError(f"{path}: missing array {payload!r}")
            array = npz[payload]
            return array if marker == _ARRAY else array[()]
        if marker == _TUPLE:
            if not isinstance(payload, list):
                raise CheckpointError(f"{path}: malformed tuple {payload!r}")
            return tuple(_decode(v, npz, path) for v in payload)
        if marker == _DICT:
            if not isinstance(payload, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str | int) for p in payload
            ):
                raise CheckpointError(f"{path}: malformed dict {payload!r}")
            return {k: _decode(v, npz, path) for k, v in payload}
    return {k: _decode(v, npz, path) for k, v in node.items()}
