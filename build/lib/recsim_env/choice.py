"""The choice model: who clicks what, and how much they engage.

``s = β·(u·x) + α·a − κ·(φ·x)`` for each candidate (interest, click-bait appeal, topic fatigue).
Single item: click with probability ``sigmoid(s − s0)``. Slate: multinomial logit over the slate and a
no-click option, each position weighted by ``1/(1+j)^position_bias``; a one-item slate reduces to the
single-item logistic, so ``click_prob`` in ``info`` is the same quantity in both modes.
Click → engagement ``length · 2·sigmoid(γq·q + γσ·σ)``: quality and satisfaction make people stay.
"""

from __future__ import annotations

import numpy as np

from recsim_env.config import SimConfig


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def scores(
    cfg: SimConfig,
    topics: np.ndarray,
    appeal: np.ndarray,
    interest: np.ndarray,
    fatigue: np.ndarray,
) -> np.ndarray:
    """``(B, C)`` utilities from candidate topics ``(B, C, K)``, appeal ``(B, C)``, user state ``(B, K)``."""
    w = (
        cfg.interest_weight * interest - cfg.fatigue_weight * fatigue
    )  # (u·x)β − κ(φ·x) = (βu − κφ)·x
    return np.einsum("bck,bk->bc", topics, w) + cfg.appeal_weight * appeal


def engagement_if_clicked(
    cfg: SimConfig, length: np.ndarray, quality: np.ndarray, satisfaction: np.ndarray
) -> np.ndarray:
    """Watch time on a click; ``satisfaction`` is ``(B,)`` and broadcasts over candidates."""
    sat = satisfaction[:, None] if quality.ndim == 2 else satisfaction
    return (
        length * 2.0 * sigmoid(cfg.quality_engagement * quality + cfg.satisfaction_engagement * sat)
    )


def satisfaction_value(cfg: SimConfig, quality: np.ndarray, appeal: np.ndarray) -> np.ndarray:
    """``tanh(q − c·a)``: what consuming an item does to satisfaction and the time budget
    (> 0 satisfying, < 0 click bait); the same expression as in :meth:`Users.consume`."""
    return np.tanh(quality - cfg.clickbait_penalty * appeal)


def position_weights(cfg: SimConfig) -> np.ndarray:
    return (1.0 / (1.0 + np.arange(max(cfg.slate_size, 1))) ** cfg.position_bias).astype(np.float32)


def slate_click_probs(cfg: SimConfig, slate_scores: np.ndarray) -> np.ndarray:
    """MNL with a no-click option: ``(B, k)`` probability that each slate position is clicked."""
    v = np.exp(np.clip(slate_scores - cfg.click_threshold, -30.0, 30.0)) * position_weights(cfg)
    return v / (1.0 + v.sum(axis=1, keepdims=True))
