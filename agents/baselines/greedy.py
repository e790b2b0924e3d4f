"""Myopic greedy and ε-greedy on an online logistic-regression click model."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Info
from agents.baselines.features import LinearFeatures
from agents.baselines.scoring import FeedbackAgent
from agents.click_model import CLICK, as_click_probability, env_reward_kind
from recsim_env.validation import check_choice, check_real

TARGETS = ("click", "reward")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


class GreedyAgent(FeedbackAgent):
    """Recommends the candidates with the highest predicted click probability (myopic, no exploration).

    The click model is a logistic regression ``p = σ(w·φ)`` on the observed context φ
    (:class:`~agents.baselines.features.LinearFeatures`), trained online by one SGD step per vector
    step on the batch's observed clicks (``info["clicked"]``, else ``reward > 0``).
    ``target="reward"`` instead regresses the reward itself (squared loss) and ranks by it.

    Hyperparameters: ``lr`` (SGD step on the batch-mean gradient, normalised by the mean squared
    context norm so that any ``lr`` in (0, 2) is stable), ``l2`` (weight decay),
    ``target``, ``user_features`` (see ``LinearFeatures``), ``seed``.
    """

    def __init__(
        self,
        env: Any,
        lr: float = 0.5,
        l2: float = 0.0,
        target: str = "click",
        user_features: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(env, seed=seed)
        check_real("lr", lr, 0.0, 2.0, lo_open=True, hi_open=True)  # normalised SGD step
        check_real("l2", l2, 0.0)
        check_choice("target", target, TARGETS)
        self._hparams = {
            "lr": lr,
            "l2": l2,
            "target": target,
            "user_features": user_features,
            "seed": seed,
        }
        self.lr = float(lr)
        self.l2 = float(l2)
        self.target = target
        self.features = LinearFeatures(self.layout, user_features=user_features)
        self.weights = np.zeros(self.features.dim)
        self._last_loss = float("nan")

    # ------------------------------------------------------------------ model
    def predict(self, phi: np.ndarray) -> np.ndarray:
        """Predicted click probability (or reward) of contexts ``phi (..., dim)``."""
        z = phi @ self.weights
        return _sigmoid(z) if self.target == "click" else z

    def scores(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        return self.predict(self.features.all_candidates(obs))

    def click_probability(self, obs: np.ndarray, *, info: Info | None = None) -> np.ndarray | None:
        """The logistic model's click probability (``target="click"``); with ``target="reward"``
        the regression estimate clipped to [0, 1] when the env reward is the click, else ``None``
        (an engagement estimate is no probability)."""
        estimate = self.predict(self.features.all_candidates(np.asarray(obs, dtype=np.float32)))
        if self.target == "click":
            return estimate
        return as_click_probability(estimate) if env_reward_kind(self.env) == CLICK else None

    # ------------------------------------------------------------------ learning
    def label(self, rewards: np.ndarray, info: Info) -> np.ndarray:
        """The observed click (``info["clicked"]``, else ``reward > 0``), or the reward."""
        if self.target == "click":
            clicked = None if info is None else info.get("clicked")
            signal = np.asarray(rewards) > 0 if clicked is None else np.asarray(clicked)
        else:
            signal = rewards
        return np.asarray(signal, np.float64)

    def fit(self, phi: np.ndarray, y: np.ndarray) -> None:
        z = phi @ self.weights
        if self.target == "click":
            p = _sigmoid(z)
            eps = 1e-12
            self._last_loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        else:
            p = z
            self._last_loss = float(np.mean((p - y) ** 2))
        # Log-loss and squared loss share the gradient (p - y) φ (a factor 2 folded into lr). The
        # step is normalised by the mean ‖φ‖² (normalised LMS): stable for lr < 2 whatever the
        # feature scale (e.g. summed slate contexts), without tuning lr to it.
        grad = phi.T @ (p - y) / len(y) + self.l2 * self.weights
        scale = float(np.mean(np.einsum("nd,nd->n", phi, phi))) + 1e-12
        self.weights -= (self.lr / scale) * grad

    def update(self) -> dict[str, float]:
        return {"train/loss": self._last_loss}

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weights": self.weights.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.weights = np.array(state["weights"], dtype=np.float64)


class EpsilonGreedyAgent(GreedyAgent):
    """:class:`GreedyAgent` that, when exploring, recommends uniformly random candidates with
    probability ``epsilon`` (per user and step). Greedy when ``explore=False``."""

    def __init__(
        self,
        env: Any,
        epsilon: float = 0.1,
        lr: float = 0.5,
        l2: float = 0.0,
        target: str = "click",
        user_features: bool = True,
        seed: int | None = None,
    ) -> None:
        check_real("epsilon", epsilon, 0.0, 1.0)
        super().__init__(env, lr=lr, l2=l2, target=target, user_features=user_features, seed=seed)
        self._hparams = {"epsilon": epsilon, **self._hparams}
        self.epsilon = float(epsilon)

    def act_batch(self, obs: np.ndarray, *, explore: bool, info: Info | None) -> np.ndarray:
        actions = super().act_batch(obs, explore=explore, info=info)
        if not explore or self.epsilon == 0.0:
            return actions
        batch = actions.shape[0]
        mask = self.rng.random(batch) < self.epsilon
        if self.slate_size:
            mask = mask[:, None]
        return np.where(mask, self.random_actions(batch), actions)
