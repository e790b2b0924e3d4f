"""Counter-based random numbers for per-user randomness.

Why not one ``np.random.Generator`` for all users: with a shared sequential stream, user ``i``'s
draws would depend on how many users are stepped together, so a vector env of B users could never
match B single envs. Here every per-user random number is a pure function of
``(key, user slot, step counter, draw index)`` — the splitmix64 finaliser over a combined counter —
so it is identical whatever the batch, and still computed in batched numpy (no per-user loop).
Population-level randomness (catalogue, drift) uses ordinary ``np.random.Generator`` streams.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 2.0**-53


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (a bijection on uint64 with good avalanche), vectorised."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def derive_key(*parts: int) -> np.uint64:
    """Hash integers (seed, stream id, ...) into one 64-bit key."""
    h = np.array([0x243F6A8885A308D3], dtype=np.uint64)
    for p in parts:
        h = mix64(h + _GOLDEN + np.array([p & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return h[0]


def uniforms(key: np.uint64, slots: np.ndarray, counter: int, n: int) -> np.ndarray:
    """``(len(slots), n)`` float64 uniforms in (0, 1), one row per user slot."""
    with np.errstate(over="ignore"):
        row = mix64(slots.astype(np.uint64) * _GOLDEN + key)
        row = mix64(row + np.uint64(counter & 0xFFFFFFFFFFFFFFFF) * _M1)
        idx = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        bits = mix64(row[:, None] + idx[None, :])
    return ((bits >> _S11).astype(np.float64) + 0.5) * _TO_UNIT


def uniforms_per_row(key: np.uint64, ids: np.ndarray, counters: np.ndarray, n: int) -> np.ndarray:
    """Like :func:`uniforms`, with one counter per row: ``(len(ids), n)`` uniforms that are a pure
    function of ``(key, id, counter)`` — e.g. fixed random features of an item ``(index, birth)``."""
    with np.errstate(over="ignore"):
        row = mix64(np.asarray(ids).astype(np.uint64) * _GOLDEN + key)
        row = mix64(row + np.asarray(counters).astype(np.uint64) * _M1)
        idx = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        bits = mix64(row[:, None] + idx[None, :])
    return ((bits >> _S11).astype(np.float64) + 0.5) * _TO_UNIT


def box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two equally shaped arrays of uniforms in (0, 1)."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def normals(key: np.uint64, slots: np.ndarray, counter: int, n: int) -> np.ndarray:
    """``(len(slots), n)`` standard normals by Box–Muller over :func:`uniforms`."""
    u = uniforms(key, slots, counter, 2 * n)
    return box_muller(u[:, :n], u[:, n:])
