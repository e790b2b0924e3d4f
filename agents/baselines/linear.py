"""Linear contextual bandits with one shared model: LinUCB, linear Thompson sampling, and their
non-stationary variants (sliding-window and discounted LinUCB).

Candidates are fresh items at every step, so the arms are contexts: each candidate is described by
φ(candidate, user) (:class:`~agents.baselines.features.LinearFeatures`) and scored by one ridge
regression of the reward on φ,

    A = Σ φ φᵀ + λ I,    b = Σ r φ,    θ̂ = A⁻¹ b,

UCB score θ̂·φ + α ‖φ‖_{A⁻¹} (Li et al. 2010; Abbasi-Yadkori et al. 2011). The statistics are
updated once per vector step with the whole batch (a rank-B update ``Xᵀ X``), and A is factorised
(Cholesky) once per update, never per user. ``explore=False`` (evaluation) ranks by θ̂·φ alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Info
from agents.baselines.features import LinearFeatures
from agents.baselines.scoring import FeedbackAgent
from agents.click_model import CLICK, as_click_probability, env_reward_kind
from recsim_env.validation import check_int, check_real


class LinUCB(FeedbackAgent):
    """Shared-model LinUCB over candidate contexts.

    Hyperparameters: ``alpha`` (width of the confidence bonus, in reward units), ``reg`` (ridge λ),
    ``user_features`` (include the user block in φ), ``seed``.
    """

    def __init__(
        self,
        env: Any,
        alpha: float = 1.0,
        reg: float = 1.0,
        user_features: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(env, seed=seed)
        check_real("alpha", alpha, 0.0)
        check_real("reg", reg, 0.0, lo_open=True)
        self._hparams = {"alpha": alpha, "reg": reg, "user_features": user_features, "seed": seed}
        self.alpha = float(alpha)
        self.reg = float(reg)
        self.features = LinearFeatures(self.layout, user_features=user_features)
        d = self.features.dim
        self._gram = np.zeros((d, d))  # Σ φ φᵀ (weighted, for the non-stationary variants)
        self._xy = np.zeros(d)  # Σ r φ
        self._posterior_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ statistics
    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add one batch of (context, reward) pairs to the sufficient statistics."""
        self._gram += x.T @ x
        self._xy += x.T @ y

    def _width_map(self, design_inv_chol: np.ndarray) -> np.ndarray:
        """``T`` such that the confidence width of φ is ‖T φ‖ (here ‖φ‖_{A⁻¹}: ``T = L⁻¹``)."""
        return design_inv_chol

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(θ̂, L⁻¹, T)`` with ``A = L Lᵀ`` (so ``A⁻¹ = L⁻ᵀ L⁻¹``), cached until the next update."""
        if self._posterior_cache is None:
            d = self._xy.shape[0]
            design = self._gram + self.reg * np.eye(d)
            chol = np.linalg.cholesky(design)
            chol_inv = np.linalg.solve(chol, np.eye(d))
            theta = chol_inv.T @ (chol_inv @ self._xy)
            self._posterior_cache = (theta, chol_inv, self._width_map(chol_inv))
        return self._posterior_cache

    @property
    def theta(self) -> np.ndarray:
        """Current reward-model weights θ̂."""
        return self.posterior()[0]

    # ------------------------------------------------------------------ acting
    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        phi = self.features.all_candidates(obs)
        theta, _, width_map = self.posterior()
        mean = phi @ theta
        if not explore or self.alpha == 0.0:
            return mean
        return mean + self.alpha * np.linalg.norm(phi @ width_map.T, axis=-1)

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray | None:
        """The ridge estimate θ̂·φ clipped to [0, 1] when the env reward is the click (it then
        estimates the click probability); ``None`` when the reward is the engagement."""
        if env_reward_kind(self.env) != CLICK:
            return None
        phi = self.features.all_candidates(np.asarray(obs, dtype=np.float32))
        return as_click_probability(phi @ self.posterior()[0])

    # ------------------------------------------------------------------ learning
    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._accumulate(x, y)
        self._posterior_cache = None

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "gram": self._gram.copy(), "xy": self._xy.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._gram = np.array(state["gram"], dtype=np.float64)
        self._xy = np.array(state["xy"], dtype=np.float64)
        self._posterior_cache = None


class LinearThompson(LinUCB):
    """Linear Thompson sampling (Agrawal & Goyal 2013) with the same ridge posterior:
    when exploring, each user draws its own θ ~ N(θ̂, α² A⁻¹) and ranks by θ·φ.

    ``alpha`` scales the posterior (the reward noise scale); ``explore=False`` ranks by θ̂·φ.
    """

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        phi = self.features.all_candidates(obs)
        theta, chol_inv, _ = self.posterior()
        if not explore or self.alpha == 0.0:
            return phi @ theta
        z = self.rng.standard_normal((obs.shape[0], theta.shape[0]))
        thetas = theta + self.alpha * (z @ chol_inv)  # Cov = α² L⁻ᵀ L⁻¹ = α² A⁻¹
        return np.einsum("bcd,bd->bc", phi, thetas)


class SlidingWindowUCB(LinUCB):
    """Sliding-window LinUCB (Garivier & Moulines 2011; Cheung et al. 2019): the statistics cover
    the last ``window`` observations only (user-steps, whatever the batch size), so the model
    forgets a world that has changed.

    Kept exactly with a ring buffer of the last ``window`` (φ, r) pairs: each batch is added and the
    evicted rows subtracted (a rank-B up- and down-date), and the sums are recomputed from the buffer
    each time it wraps so that rounding errors cannot accumulate.
    """

    def __init__(
        self,
        env: Any,
        window: int = 2000,
        alpha: float = 1.0,
        reg: float = 1.0,
        user_features: bool = True,
        seed: int | None = None,
    ) -> None:
        check_int("window", window, 1)
        super().__init__(env, alpha=alpha, reg=reg, user_features=user_features, seed=seed)
        self._hparams = {"window": window, **self._hparams}
        self.window = int(window)
        self._buf_x = np.zeros((self.window, self.features.dim))
        self._buf_y = np.zeros(self.window)
        self._buf_pos = 0  # next slot to write
        self._buf_len = 0  # filled slots

    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        w = self.window
        if len(y) >= w:  # the batch alone fills the window
            x, y = x[-w:], y[-w:]
        n = len(y)
        slots = (self._buf_pos + np.arange(n)) % w
        # until the buffer is full, slots [0, len) are filled and writing starts at pos == len
        evicted = slots if self._buf_len == w else slots[slots < self._buf_len]
        if len(evicted):  # subtract what falls out of the window
            old_x, old_y = self._buf_x[evicted], self._buf_y[evicted]
            self._gram -= old_x.T @ old_x
            self._xy -= old_x.T @ old_y
        self._buf_x[slots] = x
        self._buf_y[slots] = y
        self._gram += x.T @ x
        self._xy += x.T @ y
        self._buf_len = min(w, self._buf_len + n)
        wrapped = self._buf_pos + n >= w
        self._buf_pos = (self._buf_pos + n) % w
        if wrapped:  # exact recomputation, once per window
            filled_x, filled_y = self._buf_x[: self._buf_len], self._buf_y[: self._buf_len]
            self._gram = filled_x.T @ filled_x
            self._xy = filled_x.T @ filled_y

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "buf_x": self._buf_x.copy(),
            "buf_y": self._buf_y.copy(),
            "buf_pos": self._buf_pos,
            "buf_len": self._buf_len,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._buf_x = np.array(state["buf_x"], dtype=np.float64)
        self._buf_y = np.array(state["buf_y"], dtype=np.float64)
        self._buf_pos = int(state["buf_pos"])
        self._buf_len = int(state["buf_len"])


class DiscountedUCB(LinUCB):
    """Discounted LinUCB (D-LinUCB, Russac et al. 2019; Garivier & Moulines 2011 for the MAB case):
    every observation's weight is multiplied by ``discount`` at each user-step (a batch of B
    observations ages the statistics by ``discount ** B``), so the model's memory is about
    ``1 / (1 - discount)`` user-steps.

        V = Σ γˢ φ φᵀ + λ I,   Ṽ = Σ γ²ˢ φ φᵀ + λ I,   θ̂ = V⁻¹ Σ γˢ r φ,
        score = θ̂·φ + α ‖φ‖_{V⁻¹ Ṽ V⁻¹}        (γ = ``discount``, s = age in user-steps)

    (``discount`` rather than ``gamma``: it is not the RL discount factor.)
    """

    def __init__(
        self,
        env: Any,
        discount: float = 0.999,
        alpha: float = 1.0,
        reg: float = 1.0,
        user_features: bool = True,
        seed: int | None = None,
    ) -> None:
        check_real("discount", discount, 0.0, 1.0, lo_open=True)
        super().__init__(env, alpha=alpha, reg=reg, user_features=user_features, seed=seed)
        self._hparams = {"discount": discount, **self._hparams}
        self.discount = float(discount)
        self._gram_sq = np.zeros_like(self._gram)  # Σ γ²ˢ φ φᵀ

    def _accumulate(self, x: np.ndarray, y: np.ndarray) -> None:
        decay = self.discount ** len(y)
        xtx = x.T @ x
        self._gram = decay * self._gram + xtx
        self._gram_sq = decay * decay * self._gram_sq + xtx
        self._xy = decay * self._xy + x.T @ y

    def _width_map(self, design_inv_chol: np.ndarray) -> np.ndarray:
        # ‖φ‖²_{V⁻¹ Ṽ V⁻¹} = ‖Rᵀ V⁻¹ φ‖² with Ṽ = R Rᵀ
        d = self._gram_sq.shape[0]
        chol_sq = np.linalg.cholesky(self._gram_sq + self.reg * np.eye(d))
        design_inv = design_inv_chol.T @ design_inv_chol
        return chol_sq.T @ design_inv

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "gram_sq": self._gram_sq.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._gram_sq = np.array(state["gram_sq"], dtype=np.float64)
