"""The batched simulator core: B users stepped at once with vectorised numpy.

Both Gymnasium faces (``RecSimEnv``: B = 1, ``RecSimVectorEnv``: B users) are thin views of this
class. Per-user randomness comes from :mod:`recsim_env.rng` keyed by (user slot, step counter), so
user ``i`` of a vector env sees exactly what a single env with ``user_index=i`` sees.

Order of one step at counter t: resolve the action on the candidates shown (click drawn at t) →
user dynamics → world tick (clock, churn, drift; owners only) → drift pull → termination →
counter t+1 → new candidates (drawn at t+1) → new users for ended sessions (drawn at t+1; with
``next_step`` autoreset one step later, :mod:`recsim_env.core_autoreset`) → observation and truth.

With ``returning_users`` (see :mod:`recsim_env.returning`) the termination step also decides, for
every session that ended, whether and after which gap the user comes back (drawn at t from the
slot's own return stream); a returning user replaces the "new user" of the autoreset (or, within a
``horizon="lifetime"`` episode, continues in the same step).

With a calibration (``SimConfig.calibration``, :mod:`recsim_env.grounding`) a new user is a real
user of the log, drawn by activity from one more counter-based uniform of its slot (so vector ≡
single still holds), and ``info`` carries ``user_id`` ``(B,)`` and ``item_id`` ``(B, C)``, the log's
ids of the user and the candidates of the returned observation (beside ``click_prob``; in
``final_info`` for the rows that ended). A returning user stays the same real user, and exogenous
drift pulls each user towards its own interest moved as the population moved (not onto the
population mean, see :meth:`BatchedCore._drift_target`).

The returning users' part of a step and the long-term reference are in
:mod:`recsim_env.core_lifetime`, checkpointing in :mod:`recsim_env.core_state` (mixins of
:class:`BatchedCore`: the same methods on the same object).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium.error import ClosedEnvironmentError, ResetNeeded

from recsim_env import rng as crng
from recsim_env.choice import (
    engagement_if_clicked,
    satisfaction_value,
    scores,
    sigmoid,
    slate_click_probs,
)
from recsim_env.config import CATALOGUE_MAX_BYTES, SimConfig
from recsim_env.core_autoreset import AutoresetSteps, mask_idle
from recsim_env.core_lifetime import LifetimeSteps
from recsim_env.core_state import CoreState
from recsim_env.observation import RETURNING_USER_FEATURES, ObsLayout
from recsim_env.returning import Lifetimes
from recsim_env.users import Users
from recsim_env.validation import ConfigError, check_int, fail
from recsim_env.world import World

_KEY_USER, _KEY_CAND, _KEY_CLICK, _KEY_RETURN = 1, 2, 3, 4


class ResetNeededError(ResetNeeded, RuntimeError):
    """``step`` before the first ``reset`` (Gymnasium's ``ResetNeeded``, and a ``RuntimeError``)."""


class ClosedEnvError(ClosedEnvironmentError, RuntimeError):
    """``step``/``reset`` after ``close()`` (``ClosedEnvironmentError``, and a ``RuntimeError``)."""


BATCH_MAX_BYTES = CATALOGUE_MAX_BYTES  # the same documented cap for the per-user arrays


def batch_bytes(cfg: SimConfig, obs_size: int) -> int:
    """Approximate memory per user of a step: the observation three times (current, next,
    ``final_obs``), per-candidate ground truth and indices, per-topic user state."""
    return 12 * obs_size + 64 * cfg.num_candidates + 40 * cfg.num_topics + 200


def _check_batch_size(cfg: SimConfig, batch: int, obs_size: int) -> None:
    per_user = batch_bytes(cfg, obs_size)
    if batch * per_user > BATCH_MAX_BYTES:
        fail(
            "num_envs",
            batch,
            f"at most {BATCH_MAX_BYTES // per_user} users for this config (about {per_user} "
            f"bytes each, {BATCH_MAX_BYTES / 2**30:g} GiB in all)",
        )


def assert_finite(arrays: dict[str, Any], where: str, clock: int) -> None:
    """Raise ``AssertionError`` naming the first non-finite float array (NaN/inf must never reach
    an agent; the config bounds in :mod:`recsim_env.config` are what prevents it)."""
    for name, value in arrays.items():
        if isinstance(value, dict):
            assert_finite(value, where, clock)
        elif (
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and not np.isfinite(value).all()
        ):
            raise AssertionError(f"non-finite {name} in {where}() at clock {clock}")


def layout_for(cfg: SimConfig) -> ObsLayout:
    """The observation layout of a configuration (see :mod:`recsim_env.observation`)."""
    returning = cfg.returning_users
    user_dim = cfg.num_topics + 2 + int(cfg.notify_drift)
    if cfg.observability == "full":
        user_dim += 2 * cfg.num_topics + 2
    if returning:
        user_dim += len(RETURNING_USER_FEATURES)
    return ObsLayout(
        cfg.num_candidates,
        cfg.num_topics,
        user_dim,
        notify_drift=cfg.notify_drift,
        full=cfg.observability == "full",
        item_signals=returning,
        embedding_dim=cfg.item_embedding_dim,
        returning=returning,
    )


# the settings a World is built from (catalogue, drift): a follower must share them
WORLD_FIELDS = (
    "num_items", "num_topics", "item_embedding_dim", "drift", "item_churn", "returning_users",
    "appeal_weight", "click_threshold", "freshness_scale", "interest_weight",
    "popularity_maturity", "popularity_noise", "quality_appeal_corr", "quality_engagement",
    "signal_maturity", "signal_noise", "topic_concentration",
)  # fmt: skip


def _check_world(world: Any, cfg: SimConfig) -> None:
    """``world=`` of an env of another configuration is refused before anything is built."""
    own = getattr(world, "cfg", None)
    if own is None:
        raise ConfigError(f"invalid world={world!r} (allowed: the .world of a RecSimVectorEnv)")
    differ = [
        f"{name}={getattr(own, name, None)!r} (this env: {getattr(cfg, name, None)!r})"
        for name in WORLD_FIELDS
        if getattr(own, name, None) != getattr(cfg, name, None)
    ]
    if differ:
        raise ConfigError(
            f"invalid world= (allowed: the world of an env with the same catalogue and drift "
            f"settings): it was built with {', '.join(differ)}"
        )


class BatchedCore(LifetimeSteps, AutoresetSteps, CoreState):
    def __init__(
        self,
        cfg: SimConfig,
        batch: int,
        *,
        seed: int | None = None,
        world: World | None = None,
        user_index: int = 0,
    ) -> None:
        batch = check_int("num_envs", batch, 1)
        user_index = check_int("user_index", user_index, 0, 2**62)
        _check_batch_size(cfg, batch, layout_for(cfg).size)
        if world is not None:
            # the calibration first: it explains every other difference between the two configs
            if getattr(getattr(world, "calibration", None), "fingerprint", None) != getattr(
                cfg.resolved_calibration, "fingerprint", None
            ):
                raise ConfigError(
                    f"a shared world must have the same calibration (the world's: "
                    f"{getattr(getattr(world, 'cfg', None), 'calibration', None)!r}, this env's: "
                    f"{cfg.calibration!r})"
                )
            _check_world(world, cfg)
        self.cfg = cfg
        self.batch = batch
        self.follower = world is not None
        self.world = world if world is not None else World(cfg, seed)
        # real users and items (recsim_env/grounding.py); None: the made-up world
        self.calibration = self.world.calibration
        self.slots = np.arange(user_index, user_index + batch, dtype=np.uint64)
        self.user_index = user_index
        self.users = Users(cfg, batch, calibrated=self.calibration is not None)
        self.returning = cfg.returning_users
        self.lifetimes = Lifetimes(cfg, batch) if self.returning else None
        self.layout = layout_for(cfg)
        self._cand_offsets = np.arange(cfg.num_candidates, dtype=np.int64)
        self._rows = np.arange(batch)
        self.counter = 0
        self._set_keys(self.world.seed)
        self.candidates = np.zeros((batch, cfg.num_candidates), np.int64)
        self.obs = np.zeros((batch, self.layout.size), np.float32)
        self.ready = False  # reset() (or load_state_dict) done: there is something to act on
        # next_step autoreset: rows whose next step is a reset step (see core_autoreset.py)
        self.pending = np.zeros(batch, bool)
        self.any_pending = False
        self.closed = False
        # NaN/inf guard on everything an agent receives; off by default (measured +10–15 % per step
        # at B = 4096), on under the tests (tests/recsim_env/conftest.py sets RECSIM_CHECK_FINITE=1)
        self.check_finite = os.environ.get("RECSIM_CHECK_FINITE", "") not in ("", "0")

    def close(self) -> None:
        """Mark the core closed: any later ``reset``/``step`` is an error (its state is kept)."""
        self.closed = True

    def check_usable(self, what: str) -> None:
        if self.closed:
            raise ClosedEnvError(f"{what}() called on a closed environment: make a new one")
        if not self.ready and what == "step":
            raise ResetNeededError("call reset() before step()")

    # ------------------------------------------------------------------------------ seeding
    def _set_keys(self, seed: int) -> None:
        salt = 1 if self.follower else 0  # evaluation users are never the training users
        streams = (_KEY_USER, _KEY_CAND, _KEY_CLICK) + ((_KEY_RETURN,) if self.returning else ())
        self._keys = [crng.derive_key(seed, salt, k) for k in streams]

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """New users for every slot (or, with returning users, the next session of a user whose
        return is pending). With a seed an owner re-creates its world (clock 0)."""
        self.check_usable("reset")
        if seed is not None:
            if not self.follower:
                self.world.reset(seed)
            self.counter = 0
            self._set_keys(seed if self.follower else self.world.seed)
            if self.returning:
                self.lifetimes.pending[:] = False
        self._draw_candidates()
        self._next_users(self._rows)
        self._observe(self._rows)
        info = self._candidate_info()
        self.pending[:], self.any_pending = False, False
        self.ready = True
        if self.check_finite:
            assert_finite({"observation": self.obs, **info}, "reset", self.world.clock)
        return self.obs, info

    # ------------------------------------------------------------------------------ step
    def step(self, actions: np.ndarray, *, autoreset: bool | str = True):
        """``autoreset``: ``True``, ``"next_step"`` (:mod:`recsim_env.core_autoreset`) or ``False``."""
        if self.closed or not self.ready:
            self.check_usable("step")
        idle = snapshot = None  # next_step: the rows whose step is a reset step
        if self.any_pending:
            if self.pending.all():
                return self._pure_reset_step()
            idle, idle_rows = self.pending, np.flatnonzero(self.pending)
            snapshot = self._snapshot(idle_rows) if self.returning else None
        cfg, users, cat = self.cfg, self.users, self.world.catalogue
        rows = self._rows
        u = crng.uniforms(self._keys[2], self.slots, self.counter, 1)[:, 0]
        if cfg.slate_mode:
            slate = actions
            slate_scores = np.take_along_axis(self._scores, slate, axis=1)
            probs = slate_click_probs(cfg, slate_scores)  # (B, k)
            cum = np.cumsum(probs, axis=1)
            pos = (u[:, None] >= cum).sum(axis=1)  # k means "no click"
            clicked = pos < cfg.slate_size
            pos = np.minimum(pos, cfg.slate_size - 1)
            chosen = slate[rows, pos]
            slate_eng = np.take_along_axis(self._eng, slate, axis=1)
            value = (probs * (slate_eng if cfg.reward == "engagement" else 1.0)).sum(axis=1)
            regret = np.maximum(self._best_value - value, 0.0)
            shown_items = np.take_along_axis(self.candidates, slate, axis=1)
            shown_topics = cat.topics[shown_items].mean(axis=1)
        else:
            chosen = actions
            clicked = u < self._click_prob[rows, chosen]
            regret = self._best_value - self._expected[rows, chosen]
            shown_topics = None
            pos = np.zeros(self.batch, np.int64)
        if idle is not None:  # a reset step: its action is ignored (no click, no regret)
            clicked &= ~idle
            regret[idle] = 0.0
        item = self.candidates[rows, chosen]
        topics = cat.topics[item]
        # read before the world tick: churn may replace the item in its catalogue slot
        item_length = cat.length[item] if self.returning else None
        engagement = np.where(clicked, self._eng[rows, chosen], 0.0).astype(np.float32)
        reward = engagement if cfg.reward == "engagement" else clicked.astype(np.float32)
        users.consume(
            clicked,
            topics if shown_topics is None else shown_topics,
            topics,
            cat.quality[item],
            cat.appeal[item],
            reward,
        )

        event = False if self.follower else self.world.tick()
        if cfg.drift_pull > 0:
            users.pull_towards(self._drift_target(), cfg.drift_pull)
        terminated = users.budget <= 0.0
        truncated = (users.session_step >= cfg.max_session_steps) & ~terminated
        if idle is not None:
            terminated &= ~idle
            truncated &= ~idle
        life: dict[str, np.ndarray] = {}
        if self.returning:
            longterm_regret = self._longterm_regret(actions, chosen)
            terminated, truncated, life = self._lifetime_step(
                terminated, truncated, reward, clicked, engagement, item_length
            )
            life["longterm_regret"] = longterm_regret
            if idle is not None:
                terminated, truncated = terminated & ~idle, truncated & ~idle
                mask_idle(life, idle, tuple(life))
                self._restore(idle_rows, snapshot)
        self.counter += 1
        self._draw_candidates()
        if self.returning and cfg.horizon == "lifetime":
            # a return inside a lifetime episode is no episode boundary: the next session starts now
            back = np.flatnonzero(life["returned"])
            if len(back):
                self.lifetimes.come_back(users, back, self._drift_target(back))
        if idle is not None:
            self._next_users(idle_rows)
        self._observe(rows)
        info = {
            "clicked": clicked,
            # which slate position was clicked (-1: none); observable feedback, not ground truth
            "clicked_position": np.where(clicked, pos, -1),
            "engagement": engagement,
            "regret": regret.astype(np.float32),
            "drift_event": np.full(self.batch, event),
            "drift_phase": np.full(self.batch, self.world.drift.phase, np.int64),
            "clock": np.full(self.batch, self.world.clock, np.int64),
        }
        info.update(life)
        done = terminated | truncated
        next_step = autoreset == "next_step"
        if next_step:
            info["reset_step"] = idle if idle is not None else np.zeros(self.batch, bool)
            self.pending, self.any_pending = done, bool(done.any())
        if autoreset and done.any():
            ended = np.flatnonzero(done)
            info["final_info"], info["_final_info"] = self._final_info(done, ended, life), done
            if not next_step:  # same_step: the next users start now
                # np.zeros is calloc'd (lazily zeroed pages): only the ended rows are written
                final_obs = np.zeros(self.obs.shape, np.float32)
                final_obs[ended] = self.obs[ended]
                self._next_users(ended)
                self._observe(ended)
                info["final_obs"], info["_final_obs"] = final_obs, done
        info.update(self._candidate_info())
        if self.check_finite:
            assert_finite(
                {"observation": self.obs, "reward": reward, **info}, "step", self.world.clock
            )
        return self.obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------------------ internals
    def _draw_candidates(self) -> None:
        u = crng.uniforms(self._keys[1], self.slots, self.counter, 2)
        # the items available now: all of them, or a calibration's items born by now (a prefix)
        cat = self.world.catalogue
        m, strides = cat.available, cat.strides
        start = (u[:, 0] * m).astype(np.int64)
        stride = strides[(u[:, 1] * len(strides)).astype(np.int64)]
        self.candidates = (start[:, None] + stride[:, None] * self._cand_offsets) % m

    def _next_users(self, rows: np.ndarray) -> None:
        """Start the next episode of ``rows``: a returning user's next session, else a new user."""
        if not self.returning:
            self._spawn(rows)
            return
        lt = self.lifetimes
        pending = lt.pending[rows]
        back, new = rows[pending], rows[~pending]
        if len(back):
            lt.come_back(self.users, back, self._drift_target(back))
        if len(new):
            self._spawn(new)
            lt.start(new)

    def _spawn(self, rows: np.ndarray) -> None:
        k, cal, drift = self.cfg.num_topics, self.calibration, self.world.drift
        if cal is None:
            u = crng.uniforms(self._keys[0], self.slots[rows], self.counter, 2 * k + 1)
            noise = crng.box_muller(u[:, :k], u[:, k : 2 * k])
            self.users.spawn(rows, drift.new_user_mean, noise, u[:, 2 * k])
            return
        # A real user, drawn by activity with one more uniform of the same counter-based stream
        # (the first 2k + 1 are those of a made-up user); its interest vector is moved by how far
        # drift has moved the population from where the trajectory starts.
        u = crng.uniforms(self._keys[0], self.slots[rows], self.counter, 2 * k + 2)
        noise = crng.box_muller(u[:, :k], u[:, k : 2 * k])
        real = np.minimum(
            np.searchsorted(cal.user_cdf, u[:, 2 * k + 1], side="right"), cal.num_users - 1
        )
        shift = drift.new_user_mean - cal.trajectory[0]
        own = cal.user_interest[real]
        centre = (own + self.cfg.user_noise * noise).astype(np.float32)
        self.users.spawn(rows, own + shift, noise, u[:, 2 * k], real_index=real, centre=centre)

    def _drift_target(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Where exogenous drift pulls live users (``drift_pull`` per tick, and in closed form
        while away): the population mean ``μ``; with a calibration, each user's own interest
        moved as the population moved, ``clip(centre + μ − trajectory[0])`` (``centre``: the real
        user's vector + its noise), so a user follows the trajectory and keeps its identity
        instead of collapsing onto the mean (ticks are minutes of log time; tastes last months)."""
        mean = self.world.drift.mean
        if self.calibration is None:
            return mean
        centre = self.users.centre
        assert centre is not None  # calibrated users have one
        if rows is not None:
            centre = centre[rows]
        return np.clip(centre + (mean - self.calibration.trajectory[0]), -1.0, 1.0)

    def _observe(self, rows: np.ndarray) -> None:
        """Write observation rows and the ground truth of their candidates."""
        cfg, cat, users, lay = self.cfg, self.world.catalogue, self.users, self.layout
        every = len(rows) == self.batch
        if every:
            self.obs = np.empty_like(self.obs)  # a fresh array each step: agents may keep it
            cand = self.candidates
        else:
            cand = self.candidates[rows]
        obs = self.obs
        obs_rows = obs if every else np.empty((len(rows), lay.size), np.float32)
        # Gather item features straight into the observation buffer (no intermediate copy).
        items = obs_rows[:, : lay.items_size].reshape(len(rows), lay.num_candidates, lay.item_dim)
        np.take(cat.features, cand, axis=0, out=items, mode="clip")
        k, o = cfg.num_topics, lay.items_size
        obs_rows[:, o : o + k] = users.history[rows]
        obs_rows[:, o + k] = users.ctr[rows]
        obs_rows[:, o + k + 1] = users.session_step[rows] / cfg.max_session_steps
        o += k + 2
        if cfg.notify_drift:
            obs_rows[:, o] = float(self.world.last_event and not self.follower)
            o += 1
        if cfg.observability == "full":
            obs_rows[:, o : o + k] = users.interest[rows]
            obs_rows[:, o + k : o + 2 * k] = users.fatigue[rows] / cfg.fatigue_max
            obs_rows[:, o + 2 * k] = users.satisfaction[rows]
            obs_rows[:, o + 2 * k + 1] = np.clip(users.budget[rows] / cfg.budget_max, 0.0, 1.0)
            o += 2 * k + 2
        if self.returning:
            obs_rows[:, o : o + len(RETURNING_USER_FEATURES)] = self.lifetimes.features(rows)
        if not every:
            obs[rows] = obs_rows
        # Ground truth for these candidates (never in the observation).
        s = scores(cfg, items[..., :k], cat.appeal[cand], users.interest[rows], users.fatigue[rows])
        p = sigmoid(s - cfg.click_threshold)
        eng = engagement_if_clicked(
            cfg, cat.length[cand], cat.quality[cand], users.satisfaction[rows]
        )
        expected = p * eng if cfg.reward == "engagement" else p
        if every:
            self._scores, self._click_prob, self._eng, self._expected = s, p, eng, expected
        else:
            for name, value in zip(
                ("_scores", "_click_prob", "_eng", "_expected"), (s, p, eng, expected), strict=True
            ):
                getattr(self, name)[rows] = value
        self._oracle_rows(rows, s, eng, expected, every)
        if self.returning:
            value = satisfaction_value(cfg, cat.quality[cand], cat.appeal[cand])
            gain = (eng if cfg.reward == "engagement" else 1.0) + cfg.longterm_weight * value
            self._longterm_rows(rows, s, p, gain, every)

    def _oracle_rows(self, rows, s, eng, expected, every) -> None:
        cfg = self.cfg
        if not cfg.slate_mode:
            oracle = expected.argmax(axis=1)
            best = expected[np.arange(len(rows)), oracle]
        else:
            # Top-k by stand-alone expected reward, best first: an approximation of the best MNL
            # slate (exact for k = 1); regret is clipped at 0 should a chosen slate beat it.
            k = cfg.slate_size
            top = np.argpartition(-expected, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(expected, top, axis=1), axis=1, kind="stable")
            oracle = np.take_along_axis(top, order, axis=1)
            probs = slate_click_probs(cfg, np.take_along_axis(s, oracle, axis=1))
            gain = np.take_along_axis(eng, oracle, axis=1) if cfg.reward == "engagement" else 1.0
            best = (probs * gain).sum(axis=1)
        if every:
            self._oracle, self._best_value = oracle, best
        else:
            self._oracle[rows], self._best_value[rows] = oracle, best

    def _candidate_arrays(self) -> dict[str, np.ndarray]:
        """Ground truth about the candidates now observed (internal arrays, not copies)."""
        arrays = {
            "click_prob": self._click_prob,
            "expected_reward": self._expected,
            "oracle_action": self._oracle,
        }
        if self.returning:
            arrays["longterm_value"] = self._lt_value
            arrays["longterm_action"] = self._lt_action
        if self.calibration is not None:  # ids as in the log (fresh arrays)
            real, item_ids = self.users.real_index, self.world.catalogue.item_ids
            assert real is not None and item_ids is not None  # set up with the calibration
            arrays["user_id"] = self.calibration.user_ids[real]
            arrays["item_id"] = item_ids[self.candidates]
        return arrays

    def _candidate_info(self) -> dict[str, np.ndarray]:
        """Copies for ``info``: the core overwrites its arrays in place on autoreset."""
        return {key: value.copy() for key, value in self._candidate_arrays().items()}
