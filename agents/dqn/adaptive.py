"""Drift-adaptive DQN: notice that the world changed from the agent's own signals, then adapt.

:class:`AdaptiveDQNAgent` is :class:`~agents.dqn.DQNAgent` plus a change detector and a set of
adaptation actions, each switchable (and sweepable) on its own:

**Detection** — never from ground truth. The agent cannot read ``info["drift_event"]``,
``drift_phase``, ``expected_reward``, ... (those exist for metrics); it watches one of its own
signals with a :mod:`agents.drift_detection` detector (``detector: page_hinkley | adwin | none``):

* ``detector_signal: reward`` — the mean reward of each vector step (what the users gave back);
  a drift that hurts shows up as a drop (``detector_direction: auto`` → ``down``);
* ``detector_signal: td_error`` — the training loss (Huber TD error) of each training round; a
  world that no longer matches the Q-function shows up as a rise (``auto`` → ``up``).

With ``detector_normalize`` the signal is divided by its own noise level (a slowly updated
estimate of the per-step standard deviation from successive differences, which a level shift
barely moves), so the Page-Hinkley ``ph_delta`` / ``ph_threshold`` are in noise standard
deviations and one setting serves any batch size and reward scale. After a detection the
detector rests for ``cooldown`` user-steps (the adaptation itself moves the signal: a boosted ε
lowers the reward, a perturbed network raises the loss) and restarts fresh afterwards.

**Adaptation** on each detection (``adaptation: none`` detects and logs but never adapts):

* ``epsilon_boost``: ε is raised to at least this value and decays back linearly to the base
  schedule over ``boost_steps`` user-steps (re-exploration of a world that changed);
* ``recency``: for ``recency_steps`` user-steps, replay favours recent experience — ``window``
  samples only the newest ``recency_window`` transitions, ``weighted`` samples a transition of age
  ``a`` (user-steps) with probability ∝ ``2^(−a / recency_window)`` (half-life ``recency_window``);
* ``shrink_perturb`` (Ash & Adams, 2020): ``θ ← shrink·θ + perturb·θ_fresh`` on the online and
  target networks, ``θ_fresh`` a freshly initialised network — restores plasticity while keeping
  most of what was learned; ``reset_optimizer`` clears Adam's moment estimates;
* ``lr_rewarm``: the learning rate is multiplied by this factor, decaying linearly back to ×1 over
  ``lr_rewarm_steps`` user-steps.

With ``detector: none``, ``adaptation: none`` or every action off the agent is *exactly* the plain
DQN for the same seed (same actions, losses, parameters): nothing here draws from the agent's
random streams unless an adaptation is running. Detector state, noise estimate, boost origins and
the re-initialisation generator are checkpointed, so a resumed run adapts as the original would.

Hooks used (no change to ``DQNAgent`` needed): the ``epsilon`` and ``learning_rate`` properties
(read by ``act``/``update``), ``observe``/``update``, and the replay's ``sample(batch_size, rng)``
(wrapped by :class:`RecencyReplay`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.dqn.config import DQNConfig
from agents.dqn.dqn import DQNAgent
from agents.drift_detection import ADWIN, DriftDetector, PageHinkley
from agents.qlearning.network import build_q_network
from recsim_env.validation import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    validate_field,
)

__all__ = ["AdaptiveConfig", "AdaptiveDQNAgent", "NoiseScaler", "RecencyReplay"]

DETECTORS = ("none", "page_hinkley", "adwin")
SIGNALS = ("reward", "td_error")
DIRECTIONS = ("auto", "down", "up", "both")
ADAPTATIONS = ("on_detection", "none")
RECENCY = ("none", "window", "weighted")
_AUTO_DIRECTION = {"reward": "down", "td_error": "up"}


@dataclass
class AdaptiveConfig:
    """Drift detection and adaptation hyperparameters (steps are user-steps).

    Every value is validated on construction: an invalid one raises ``ValueError`` naming the key,
    the value and what is allowed. The defaults are the setting measured best in
    ``tests/agents/test_adaptive_dqn.py`` (16 users per vector step: 3,200 user-steps = 200 vector
    steps): Page-Hinkley on the normalised reward, recency-window replay, other actions off.
    """

    # --- detection (on the agent's own signals only)
    detector: str = "page_hinkley"  # none | page_hinkley | adwin
    detector_signal: str = "reward"  # reward (mean per vector step) | td_error (training loss)
    detector_direction: str = "auto"  # auto (reward: down, td_error: up) | down | up | both
    detector_normalize: bool = True  # feed signal / noise std (PH params in std units)
    ph_delta: float = 0.5  # Page-Hinkley: shift to ignore
    ph_threshold: float = 15.0  # Page-Hinkley: evidence needed
    ph_alpha: float = 1.0  # Page-Hinkley: fading factor (1 = classic)
    ph_min_samples: int = 30  # Page-Hinkley: values before a detection is possible
    adwin_delta: float = 0.002  # ADWIN: confidence
    adwin_clock: int = 32  # ADWIN: values between checks
    cooldown: int = 4_800  # user-steps after a detection during which the detector rests
    # --- adaptation on detection
    adaptation: str = "on_detection"  # on_detection | none (detect and log only)
    epsilon_boost: float = 0.0  # ε raised to at least this (0: off)
    boost_steps: int = 4_800  # ... decaying linearly back over this many user-steps
    recency: str = "window"  # none | window | weighted
    recency_window: int = 3_200  # window: newest transitions sampled; weighted: half-life
    recency_steps: int = 8_000  # how long replay favours recent experience after a detection
    shrink_perturb: bool = False  # θ ← shrink·θ + perturb·θ_fresh on each detection
    shrink: float = 0.8
    perturb: float = 0.2
    reset_optimizer: bool = False  # clear Adam's moments on each detection
    lr_rewarm: float = 1.0  # lr multiplied by this on detection (1: off) ...
    lr_rewarm_steps: int = 4_800  # ... decaying linearly back to ×1 over this many user-steps

    def __post_init__(self) -> None:
        v = partial(validate_field, self)
        v("detector", check_choice, DETECTORS)
        v("detector_signal", check_choice, SIGNALS)
        v("detector_direction", check_choice, DIRECTIONS)
        v("detector_normalize", check_bool)
        v("ph_delta", check_real, 0.0)
        v("ph_threshold", check_real, 0.0, lo_open=True)
        v("ph_alpha", check_real, 0.0, 1.0, lo_open=True)
        v("ph_min_samples", check_int, 1)
        v("adwin_delta", check_real, 0.0, 1.0, lo_open=True, hi_open=True)
        v("adwin_clock", check_int, 1)
        v("cooldown", check_int, 0)
        v("adaptation", check_choice, ADAPTATIONS)
        v("epsilon_boost", check_real, 0.0, 1.0)
        v("boost_steps", check_int, 1)
        v("recency", check_choice, RECENCY)
        v("recency_window", check_int, 1)
        v("recency_steps", check_int, 1)
        v("shrink_perturb", check_bool)
        v("shrink", check_real, 0.0, 1.0)
        v("perturb", check_real, 0.0)
        v("reset_optimizer", check_bool)
        v("lr_rewarm", check_real, 1.0)
        v("lr_rewarm_steps", check_int, 1)

    # ------------------------------------------------------------------ derived
    @property
    def direction(self) -> str:
        """The detector's direction (``auto`` resolved from the signal)."""
        if self.detector_direction == "auto":
            return _AUTO_DIRECTION[self.detector_signal]
        return self.detector_direction

    @property
    def adapts(self) -> bool:
        """Whether a detection changes anything (else the agent is exactly plain DQN)."""
        return self.adaptation != "none" and (
            self.epsilon_boost > 0
            or self.recency != "none"
            or self.shrink_perturb
            or self.reset_optimizer
            or self.lr_rewarm > 1.0
        )

    def make_detector(self) -> DriftDetector | None:
        if self.detector == "page_hinkley":
            return PageHinkley(
                delta=self.ph_delta,
                threshold=self.ph_threshold,
                alpha=self.ph_alpha,
                min_samples=self.ph_min_samples,
                direction=self.direction,  # type: ignore[arg-type]
            )
        if self.detector == "adwin":
            return ADWIN(
                delta=self.adwin_delta,
                clock=self.adwin_clock,
                direction=self.direction,  # type: ignore[arg-type]
            )
        return None

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def keys(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))


def _plain(tree: Any) -> Any:
    """numpy arrays / scalars → Python lists / numbers, recursively (``torch.load(weights_only=True)``
    accepts only plain types and tensors)."""
    if isinstance(tree, np.ndarray):
        return tree.tolist()
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [_plain(v) for v in tree]
    return tree


class NoiseScaler:
    """Running estimate of a signal's per-step noise standard deviation.

    From successive differences, ``σ² ≈ E[(x_t − x_{t−1})²] / 2``, averaged with an exponential
    moving average (bias-corrected, horizon ``1 / rate`` values). A level shift adds a single
    large difference, so the estimate barely moves at a drift; a slowly trending signal (a learning
    curve) does not inflate it either. ``ready`` after ``warmup`` differences.
    """

    def __init__(self, rate: float = 0.005, warmup: int = 20) -> None:
        self.rate = rate
        self.warmup = warmup
        self.count = 0
        self.ema = 0.0
        self.weight = 0.0  # bias correction: sum of the EMA's weights
        self.last: float | None = None

    @property
    def ready(self) -> bool:
        return self.count >= self.warmup and self.std > 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.ema / self.weight / 2.0) if self.weight > 0 else 0.0

    def update(self, x: float) -> None:
        if self.last is not None:
            diff2 = (x - self.last) ** 2
            self.ema = (1.0 - self.rate) * self.ema + self.rate * diff2
            self.weight = (1.0 - self.rate) * self.weight + self.rate
            self.count += 1
        self.last = x

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "ema": self.ema, "weight": self.weight, "last": self.last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.ema = float(state["ema"])
        self.weight = float(state["weight"])
        self.last = None if state["last"] is None else float(state["last"])


class RecencyReplay:
    """The DQN's replay buffer, with sampling that can favour recent transitions.

    Everything but ``sample`` is the wrapped :class:`~agents.dqn.replay.ReplayBuffer`'s (attribute
    access is forwarded). ``mode`` ``none`` passes ``sample`` straight through (bit for bit the
    plain buffer); ``window`` samples uniformly among the newest ``window`` transitions (user-steps,
    at least one vector step); ``weighted`` samples the row of age ``a`` vector steps with
    probability ∝ ``2^(−a·B / window)`` and the user stream uniformly.
    """

    def __init__(self, buffer: Any) -> None:
        self.__dict__["buffer"] = buffer
        self.__dict__["mode"] = "none"
        self.__dict__["window"] = 1
        self.__dict__["recent_samples"] = 0  # batches drawn with recency (for tests and logs)

    def __getattr__(self, name: str) -> Any:
        buffer = self.__dict__.get("buffer")
        if buffer is None:  # during unpickling / copying, before __dict__ is restored
            raise AttributeError(name)
        return getattr(buffer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["buffer"], name, value)

    def __len__(self) -> int:
        return len(self.buffer)

    def recent_indices(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Flat indices (row-major from the oldest complete row) favouring the newest rows."""
        buf = self.buffer
        b = buf.num_envs
        n_rows = buf.rows - (buf.n_step - 1)
        if n_rows <= 0:
            raise ValueError(f"cannot sample: {buf.rows} rows stored, n_step={buf.n_step}")
        cols = rng.integers(0, b, size=batch_size)
        if self.mode == "window":
            w_rows = min(n_rows, max(1, math.ceil(self.window / b)))
            age = rng.integers(0, w_rows, size=batch_size)
        else:  # weighted: truncated geometric over row ages, half-life window / B rows
            half_life_rows = max(self.window / b, 1e-9)
            log_p = -math.log(2.0) / half_life_rows  # log of the per-row decay
            tail = math.exp(log_p * n_rows)  # mass beyond the oldest row, cut off
            u = rng.random(batch_size)
            age = np.floor(np.log1p(-u * (1.0 - tail)) / log_p).astype(np.int64)
            np.clip(age, 0, n_rows - 1, out=age)
        rows = n_rows - 1 - age
        return rows * b + cols, n_rows * b

    def sample(self, batch_size: int, rng: np.random.Generator) -> Any:
        if self.mode == "none":
            return self.buffer.sample(batch_size, rng)
        flat, _ = self.recent_indices(batch_size, rng)
        self.__dict__["recent_samples"] += 1
        return self.buffer.sample(batch_size, rng, flat_indices=flat)


class AdaptiveDQNAgent(DQNAgent):
    """DQN that detects drift from its own reward or TD error and adapts (see the module doc).

    Build with keyword hyperparameters — the :class:`DQNConfig` ones and the
    :class:`AdaptiveConfig` ones, flat (what ``hydra.utils.instantiate`` passes) — or with ready
    ``config=`` / ``adaptive=`` objects. ``update()`` adds ``adapt/*`` scalars to the training
    metrics: ``adapt/detections`` (cumulative), ``adapt/adaptations``, ``adapt/epsilon_boost``,
    ``adapt/lr_factor``, ``adapt/recency`` (1 while replay favours recent data),
    ``adapt/signal_std`` and ``adapt/statistic`` (Page-Hinkley's test statistic).
    """

    def __init__(
        self,
        env: Any,
        config: DQNConfig | None = None,
        adaptive: AdaptiveConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        adapt_keys = AdaptiveConfig.keys()
        adapt_hp = {k: v for k, v in hyperparameters.items() if k in adapt_keys}
        dqn_hp = {k: v for k, v in hyperparameters.items() if k not in adapt_keys}
        unknown = sorted(set(dqn_hp) - {f.name for f in fields(DQNConfig)})
        if unknown:
            known = sorted(adapt_keys | {f.name for f in fields(DQNConfig)})
            raise ValueError(
                f"unknown AdaptiveDQN hyperparameter(s) {unknown}; allowed keys: {', '.join(known)}"
            )
        if adaptive is None:
            adaptive = AdaptiveConfig(**adapt_hp)
        elif adapt_hp:
            adaptive = AdaptiveConfig(**{**adaptive.to_dict(), **adapt_hp})
        super().__init__(env, config=config, **dqn_hp)
        self.replay = RecencyReplay(self.replay)
        self._configure(adaptive)

    def _configure(self, adaptive: AdaptiveConfig) -> None:
        self.adaptive = adaptive
        self._hparams = {**self.config.to_dict(), **adaptive.to_dict()}
        self.detector: DriftDetector | None = adaptive.make_detector()
        self.scaler = NoiseScaler()
        self.detections = 0  # detector firings (not counting those in a cooldown: none fed)
        self.adaptations = 0  # times the adaptation actions were applied
        self.last_detection: int | None = None  # observed_steps at the last detection
        self.adapt_origin: int | None = None  # observed_steps at the last adaptation
        self._detector_stale = False  # restart the detector when the cooldown ends
        # Re-initialisation draws from its own generator, never from the agent's streams, so that
        # an agent that never adapts is exactly plain DQN. Seeded from (seed, tag).
        seed = self.config.seed
        self.adapt_rng = np.random.default_rng(None if seed is None else [seed, 0xADA])

    # ------------------------------------------------------------------ what adaptation changes
    def _fraction_left(self, duration: int) -> float:
        """1 at the adaptation, linearly down to 0 after ``duration`` user-steps."""
        if self.adapt_origin is None:
            return 0.0
        return max(0.0, 1.0 - (self.observed_steps - self.adapt_origin) / duration)

    @property
    def epsilon_boost(self) -> float:
        """The boosted floor under ε right now (0 when no boost is running)."""
        a = self.adaptive
        if a.epsilon_boost <= 0.0:
            return 0.0
        return a.epsilon_boost * self._fraction_left(a.boost_steps)

    @property
    def epsilon(self) -> float:
        base = super().epsilon
        boost = self.epsilon_boost
        return boost if boost > base else base

    @property
    def lr_factor(self) -> float:
        a = self.adaptive
        if a.lr_rewarm <= 1.0:
            return 1.0
        return 1.0 + (a.lr_rewarm - 1.0) * self._fraction_left(a.lr_rewarm_steps)

    @property
    def learning_rate(self) -> float:
        base = super().learning_rate
        factor = self.lr_factor
        return base if factor == 1.0 else base * factor

    @property
    def recency_active(self) -> bool:
        a = self.adaptive
        return (
            a.recency != "none"
            and self.adapt_origin is not None
            and self.observed_steps - self.adapt_origin < a.recency_steps
        )

    def _sync_replay_mode(self) -> None:
        self.replay.mode = self.adaptive.recency if self.recency_active else "none"
        self.replay.window = self.adaptive.recency_window

    # ------------------------------------------------------------------ detection
    def _feed(self, x: float) -> None:
        """One value of the monitored signal; adapt if the detector fires."""
        if self.detector is None or not math.isfinite(x):
            return
        a = self.adaptive
        if a.detector_normalize:
            self.scaler.update(x)
        in_cooldown = (
            self.last_detection is not None
            and self.observed_steps - self.last_detection < a.cooldown
        )
        if in_cooldown:
            return
        if self._detector_stale:  # restart on the post-adaptation level
            self.detector.reset()
            self._detector_stale = False
        if a.detector_normalize:
            if not self.scaler.ready:
                return
            x = x / self.scaler.std
        if self.detector.update(x):
            self.detections += 1
            self.last_detection = self.observed_steps
            self._detector_stale = True
            if a.adaptation != "none":
                self.trigger_adaptation()

    def trigger_adaptation(self) -> None:
        """Apply the configured adaptation actions now, as a detection does.

        Public so that a drift signal from outside the agent (an operator, a monitoring system)
        can drive the same actions; also what the tests use to adapt at a chosen step.
        """
        a = self.adaptive
        self.adaptations += 1
        self.adapt_origin = self.observed_steps
        if a.shrink_perturb:
            self._shrink_perturb()
        if a.reset_optimizer:
            self.optimizer.state.clear()
        self._sync_replay_mode()

    @torch.no_grad()
    def _shrink_perturb(self) -> None:
        """``θ ← shrink·θ + perturb·θ_fresh`` on both networks (the same fresh draw)."""
        a, cfg = self.adaptive, self.config
        init_seed = int(self.adapt_rng.integers(2**63 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            fresh = build_q_network(cfg.network, self.layout, cfg.hidden_sizes, cfg.dueling)
        fresh_params = [p.to(self.device) for p in fresh.parameters()]
        for net in (self.q_net, self.target_net):
            for param, new in zip(net.parameters(), fresh_params, strict=True):
                param.mul_(a.shrink).add_(new, alpha=a.perturb)

    # ------------------------------------------------------------------ loop hooks
    def _observed(self, rewards: np.ndarray) -> None:
        """The step's mean reward feeds the detector (``info`` is never read: ground truth stays
        out of the agent)."""
        if self.adaptive.detector_signal == "reward":
            self._feed(float(np.mean(rewards)))

    def update(self) -> dict[str, float]:
        self._sync_replay_mode()
        metrics = super().update()
        if self.adaptive.detector_signal == "td_error" and "train/loss" in metrics:
            self._feed(metrics["train/loss"])
        if metrics and (self.detector is not None or self.adaptations):
            metrics.update(self.adapt_metrics())
        return metrics

    def adapt_metrics(self) -> dict[str, float]:
        stat = getattr(self.detector, "statistic", float("nan"))
        return {
            "adapt/detections": float(self.detections),
            "adapt/adaptations": float(self.adaptations),
            "adapt/epsilon_boost": self.epsilon_boost,
            "adapt/lr_factor": self.lr_factor,
            "adapt/recency": float(self.recency_active),
            "adapt/signal_std": self.scaler.std,
            "adapt/statistic": float(stat),
        }

    # ------------------------------------------------------------------ persistence
    def state_dict(self, include_replay: bool = False) -> dict[str, Any]:
        state = super().state_dict(include_replay=include_replay)
        state["adaptive"] = {
            "config": self.adaptive.to_dict(),
            "detector": None if self.detector is None else _plain(self.detector.state_dict()),
            "scaler": self.scaler.state_dict(),
            "detections": self.detections,
            "adaptations": self.adaptations,
            "last_detection": self.last_detection,
            "adapt_origin": self.adapt_origin,
            "detector_stale": self._detector_stale,
            "adapt_rng": self.adapt_rng.bit_generator.state,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        saved = state.get("adaptive")
        if saved is None:  # a plain DQN checkpoint: start adapting from here
            return
        self._configure(AdaptiveConfig(**saved["config"]))
        if self.detector is not None and saved["detector"] is not None:
            self.detector.load_state_dict(saved["detector"])
        self.scaler.load_state_dict(saved["scaler"])
        self.detections = int(saved["detections"])
        self.adaptations = int(saved["adaptations"])
        last, origin = saved["last_detection"], saved["adapt_origin"]
        self.last_detection = None if last is None else int(last)
        self.adapt_origin = None if origin is None else int(origin)
        self._detector_stale = bool(saved["detector_stale"])
        self.adapt_rng.bit_generator.state = saved["adapt_rng"]
        self._sync_replay_mode()

    @classmethod
    def load(cls, path: str | Path, env: Any = None, **overrides: Any) -> AdaptiveDQNAgent:
        """Rebuild from a checkpoint (the adaptive configuration comes from the checkpoint;
        ``overrides`` may replace DQN keys that do not change learned state, e.g. ``device``)."""
        agent = super().load(path, env=env, **overrides)
        assert isinstance(agent, AdaptiveDQNAgent)
        return agent
