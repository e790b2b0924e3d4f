"""Simulator throughput: user-steps/s of the single env, the vector env at several batch sizes, and a
pure-numpy lower bound that does the same per-step arithmetic without the env API (no validation,
no info dict, no autoreset bookkeeping). Run through ``make bench`` / ``recsim-bench``."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import recsim_env  # noqa: F401  (registers the ids)
from recsim_env import SimConfig
from recsim_env import rng as crng
from recsim_env.catalogue import Catalogue
from recsim_env.choice import engagement_if_clicked, scores, sigmoid
from recsim_env.drift import Drift

ENV_ID = "recsim_env/DriftingUsers-v0"


def _timed(fn, min_seconds: float) -> tuple[int, float]:
    """Repeat ``fn`` (which returns user-steps done) until ``min_seconds`` have passed."""
    done, start = 0, time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done, elapsed


def single_env_sps(min_seconds: float = 1.0, seed: int = 0) -> float:
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 20, 1000)

    def chunk() -> int:
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                env.reset()
        return len(actions)

    done, elapsed = _timed(chunk, min_seconds)
    return done / elapsed


def vector_env_sps(batch: int, min_seconds: float = 1.0, seed: int = 0) -> float:
    envs = gym.make_vec(ENV_ID, num_envs=batch, autoreset_mode="same_step")  # the runner's mode
    envs.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 20, (16, batch))
    envs.step(actions[0])  # warm-up

    def chunk() -> int:
        for a in actions:
            envs.step(a)
        return len(actions) * batch

    done, elapsed = _timed(chunk, min_seconds)
    return done / elapsed


def numpy_lower_bound_sps(batch: int, min_seconds: float = 1.0, seed: int = 0) -> float:
    """The step's arithmetic on preallocated arrays: draws, gather, choice, dynamics, observation."""
    cfg = SimConfig(drift="mixed")
    rng = np.random.default_rng(seed)
    cat = Catalogue(cfg, rng)
    drift = Drift(cfg.drift, cfg.num_topics, rng)
    k, c, m = cfg.num_topics, cfg.num_candidates, cfg.num_items
    slots = np.arange(batch, dtype=np.uint64)
    key = crng.derive_key(seed)
    interest = rng.uniform(-1, 1, (batch, k)).astype(np.float32)
    fatigue = np.zeros((batch, k), np.float32)
    history = np.zeros((batch, k), np.float32)
    satisfaction = np.zeros(batch, np.float32)
    budget = np.full(batch, 20.0, np.float32)
    offsets = np.arange(c)
    rows = np.arange(batch)
    size = c * (k + 3) + k + 2
    actions = rng.integers(0, c, (16, batch))
    counter = [0]

    def chunk() -> int:
        nonlocal interest, fatigue, history, satisfaction, budget
        for a in actions:
            counter[0] += 1
            u = crng.uniforms(key, slots, counter[0], 3)
            cand = (
                (u[:, 0] * m).astype(np.int64)[:, None]
                + (1 + (u[:, 1] * 7).astype(np.int64))[:, None] * offsets
            ) % m
            obs = np.empty((batch, size), np.float32)
            items = obs[:, : c * (k + 3)].reshape(batch, c, k + 3)
            np.take(cat.features, cand, axis=0, out=items, mode="clip")
            obs[:, c * (k + 3) : c * (k + 3) + k] = history
            s = scores(cfg, items[..., :k], cat.appeal[cand], interest, fatigue)
            p = sigmoid(s - cfg.click_threshold)
            eng = engagement_if_clicked(cfg, cat.length[cand], cat.quality[cand], satisfaction)
            expected = p * eng
            expected.argmax(axis=1)
            clicked = (u[:, 2] < p[rows, a]).astype(np.float32)
            item = cand[rows, a]
            topics = cat.topics[item]
            value = np.tanh(cat.quality[item] - 0.5 * cat.appeal[item])
            interest += 0.1 * topics * (1 - interest**2) * clicked[:, None]
            fatigue = 0.8 * fatigue + 0.2 * topics * (0.2 + clicked[:, None])
            history = 0.8 * history + 0.2 * topics * clicked[:, None]
            satisfaction += 0.2 * (value * clicked - satisfaction)
            budget += -1.0 + 0.8 * value * clicked
            drift.tick(counter[0], rng)
            cat.refresh(drift.mean, counter[0])
            interest += cfg.drift_pull * (drift.mean - interest)
        return len(actions) * batch

    chunk()  # warm-up
    done, elapsed = _timed(chunk, min_seconds)
    return done / elapsed


def bench_simulator(
    batches: tuple[int, ...] = (1, 64, 1024, 4096), min_seconds: float = 1.0
) -> dict:
    """User-steps/s of each variant and the ratios the targets are stated in."""
    results: dict = {"single_env": single_env_sps(min_seconds)}
    for b in batches:
        results[f"vector_env_B{b}"] = vector_env_sps(b, min_seconds)
    top = max(batches)
    results[f"numpy_lower_bound_B{top}"] = numpy_lower_bound_sps(top, min_seconds)
    results["ratio_vector_vs_single"] = results[f"vector_env_B{top}"] / results["single_env"]
    results["ratio_lower_bound_vs_vector"] = (
        results[f"numpy_lower_bound_B{top}"] / results[f"vector_env_B{top}"]
    )
    results["targets"] = {
        "ratio_vector_vs_single >= 50": results["ratio_vector_vs_single"] >= 50,
        f"vector_env_B{top} >= 1e6": results[f"vector_env_B{top}"] >= 1e6,
        "ratio_lower_bound_vs_vector <= 3": results["ratio_lower_bound_vs_vector"] <= 3,
    }
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(bench_simulator(), indent=2))
