"""Exogenous drift: the world changing independently of the agent.

Drift is a list of components, each a **schedule** (*when*: ``none``, ``periodic``, ``poisson``,
``changepoints``, ``burst``) × a **process** (*how*: ``ou``/``random_walk``, ``jump``, ``seasonal``,
``trending``, ``cohort``). Processes act on the population mean interest ``μ`` that new users are
drawn from and that live users are pulled towards (``drift_pull``); ``cohort`` shifts only who
*arrives* (new users' mean), not the users already there.

A spec is a preset name (``DRIFT_PRESETS``) or a list of dicts such as
``[{"schedule": "poisson", "rate": 5e-4, "process": "jump"}]``; every key is validated.

``μ`` = clip(glide + ou_offset): abrupt and ramped moves go through one *glide* (linear
interpolation from the current mean to a target over ``ramp`` ticks, ``ramp=0`` = a jump), gradual
noise accumulates in ``ou_offset``. ``drift_event`` is raised by abrupt processes only (jump,
seasonal switch, trending start, cohort shift) — gradual OU ticks are not events.

**Replay** (a calibrated env, ``SimConfig.calibration``): the population mean follows the
calibration's ``trajectory`` (one population-mean interest vector per window of ``window_ticks``
ticks): it starts at ``trajectory[0]``, equals ``trajectory[w]`` at the centre of window ``w`` and
glides linearly between centres; after the last centre it holds. The replay is a function of the
clock alone (no state, no randomness) and is *added* to whatever the drift spec does:
``μ = clip(glide + replay(t) − trajectory[0] + ou_offset)``, so a jump moves the population away
from the trajectory and the trajectory's later changes carry on from there. It is gradual, so it
raises no ``drift_event`` and leaves ``drift_phase`` alone (``clock // window_ticks`` is the window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsim_env.validation import check_choice, check_int, check_real, fail, is_int

SCHEDULES: dict[str, dict[str, Any]] = {
    "none": {},
    "periodic": {"period": 1000, "offset": 0},
    "poisson": {"rate": 1e-3},
    "changepoints": {"times": (1000,)},
    "burst": {"period": 2000, "length": 100, "rate": 0.05},
}
PROCESSES: dict[str, dict[str, Any]] = {
    "ou": {"theta": 0.001, "sigma": 0.01},
    "random_walk": {"sigma": 0.01},
    "jump": {"ramp": 0, "scale": 0.8},
    "seasonal": {"num_profiles": 2, "ramp": 0, "scale": 0.8},
    "trending": {"ramp": 300, "level": 0.9},
    "cohort": {"scale": 0.8},
}
ABRUPT = {"jump", "seasonal", "trending", "cohort"}
MAX_RAMP = 10**12  # ticks; a glide longer than any run is a standstill

DRIFT_PRESETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "gradual": [
        {"schedule": "periodic", "period": 1, "process": "ou", "theta": 0.001, "sigma": 0.01}
    ],
    "abrupt": [{"schedule": "periodic", "period": 2000, "process": "jump"}],
    "poisson_jumps": [{"schedule": "poisson", "rate": 5e-4, "process": "jump"}],
    "seasonal": [
        {"schedule": "periodic", "period": 1000, "process": "seasonal", "num_profiles": 2}
    ],
    "trending": [{"schedule": "poisson", "rate": 1e-3, "process": "trending", "ramp": 300}],
    "cohort": [{"schedule": "periodic", "period": 2000, "process": "cohort"}],
    "burst": [
        {
            "schedule": "burst",
            "period": 2000,
            "length": 100,
            "rate": 0.05,
            "process": "jump",
            "ramp": 0,
            "scale": 0.3,
        }
    ],
    "mixed": [
        {"schedule": "periodic", "period": 1, "process": "ou", "theta": 0.001, "sigma": 0.01},
        {"schedule": "poisson", "rate": 5e-4, "process": "jump"},
    ],
}


@dataclass(frozen=True)
class DriftComponent:
    schedule: str
    process: str
    schedule_params: dict[str, Any] = field(default_factory=dict)
    process_params: dict[str, Any] = field(default_factory=dict)


MAX_PROFILES = 10_000  # seasonal regimes are drawn up front: num_profiles · num_topics floats
MAX_CHANGEPOINTS = 100_000
_SPEC = f"a preset in {sorted(DRIFT_PRESETS)} or a list of components"
_COMPONENT = (
    "a dict with a 'schedule', a 'process' and their parameters, e.g. "
    "{'schedule': 'periodic', 'period': 2000, 'process': 'jump'} (a preset name goes alone: "
    "drift='abrupt')"
)


def parse_drift(spec: Any) -> list[DriftComponent]:
    """Validate a drift spec (preset name or list of dicts) and fill defaults.

    Every error names the offending entry (``drift``, ``drift[0]``, ``drift[0].times``, ...);
    parameter values are normalised to plain Python numbers (numpy/OmegaConf scalars accepted)."""
    if isinstance(spec, str):
        if spec not in DRIFT_PRESETS:
            fail("drift", spec, _SPEC)
        spec = DRIFT_PRESETS[spec]
    if isinstance(spec, Mapping):
        spec = [spec]
    if not isinstance(spec, Sequence) or isinstance(spec, str | bytes):  # also OmegaConf lists
        fail("drift", spec, _SPEC)
    components = []
    for i, c in enumerate(spec):
        if not isinstance(c, Mapping):
            fail(f"drift[{i}]", c, _COMPONENT)
        components.append(_parse_component(i, dict(c)))
    return components


def _parse_component(i: int, c: dict[str, Any]) -> DriftComponent:
    where = f"drift[{i}]"
    schedule = c.pop("schedule", None)
    process = c.pop("process", None)
    check_choice(f"{where}.schedule", schedule, tuple(SCHEDULES))
    check_choice(f"{where}.process", process, tuple(PROCESSES))
    sp = dict(SCHEDULES[schedule])
    pp = dict(PROCESSES[process])
    for key, value in c.items():
        if key in sp:
            sp[key] = value
        elif key in pp:
            pp[key] = value
        else:
            fail(
                f"{where}.{key}",
                value,
                f"a parameter of schedule {schedule!r} ({sorted(sp)}) "
                f"or process {process!r} ({sorted(pp)})",
            )
    _check_schedule(where, schedule, sp)
    _check_process(where, process, pp)
    return DriftComponent(schedule, process, sp, pp)


def _check_schedule(where: str, name: str, p: dict[str, Any]) -> None:
    """Validate and normalise (in place) the parameters of schedule ``name``."""
    if name == "periodic":
        p["period"] = check_int(f"{where}.period", p["period"], 1)
        p["offset"] = check_int(f"{where}.offset", p["offset"], 0)
    elif name == "poisson":
        p["rate"] = check_real(f"{where}.rate", p["rate"], 0.0, 1.0)
    elif name == "changepoints":
        times = p["times"]
        if is_int(times):
            times = (times,)
        allowed = (
            f"a non-empty list of at most {MAX_CHANGEPOINTS} integer ticks >= 1, e.g. [1000, 5000]"
        )
        if (
            not isinstance(times, Sequence | np.ndarray)
            or isinstance(times, str | bytes)
            or not 0 < len(times) <= MAX_CHANGEPOINTS
        ):
            fail(f"{where}.times", times, allowed)
        p["times"] = tuple(check_int(f"{where}.times[{j}]", t, 1) for j, t in enumerate(times))
    elif name == "burst":
        p["period"] = check_int(f"{where}.period", p["period"], 1)
        p["length"] = check_int(f"{where}.length", p["length"], 1, p["period"])
        p["rate"] = check_real(f"{where}.rate", p["rate"], 0.0, 1.0)


def _check_process(where: str, name: str, p: dict[str, Any]) -> None:
    """Validate and normalise (in place) the parameters of process ``name``."""
    for key in ("theta", "sigma", "scale", "level"):
        if key in p:
            p[key] = check_real(f"{where}.{key}", p[key], 0.0, 1.0)
    if "ramp" in p:
        p["ramp"] = check_int(f"{where}.ramp", p["ramp"], 0, MAX_RAMP)
    if "num_profiles" in p:
        p["num_profiles"] = check_int(
            f"{where}.num_profiles",
            p["num_profiles"],
            2,
            MAX_PROFILES,
            note="regimes are drawn up front, num_profiles x num_topics floats",
        )


def random_profile(rng: np.random.Generator, k: int, scale: float) -> np.ndarray:
    """A population interest profile: mild dislikes everywhere, two or three favourite topics."""
    profile = rng.uniform(-0.5, 0.2, k) * scale
    favourites = rng.choice(k, size=min(k, int(rng.integers(2, 4))), replace=False)
    profile[favourites] = rng.uniform(0.6, 1.0, len(favourites)) * scale + (1 - scale) * 0.5
    return np.clip(profile, -1.0, 1.0).astype(np.float32)


class Drift:
    """Population-level drift state advanced once per world tick (O(K) work per tick)."""

    def __init__(
        self,
        spec: Any,
        num_topics: int,
        rng: np.random.Generator,
        *,
        trajectory: np.ndarray | None = None,
        window_ticks: int = 1,
    ) -> None:
        self.components = parse_drift(spec)
        self.k = num_topics
        # replay of a calibration's trajectory (see the module docstring): a function of the clock
        self.trajectory = None if trajectory is None else np.asarray(trajectory, np.float64)
        self.window_ticks = int(window_ticks)
        if self.trajectory is not None:
            if self.trajectory.ndim != 2 or self.trajectory.shape[1] != num_topics:
                raise ValueError(
                    f"trajectory of shape {self.trajectory.shape}: want (T, {num_topics})"
                )
            start = self.trajectory[0].astype(np.float32)
        else:
            start = random_profile(rng, num_topics, 0.8)
        self.glide_from = start.copy()
        self.glide_to = start.copy()
        self.glide_len = 0
        self.glide_pos = 0
        self.ou_offset = np.zeros(num_topics, np.float32)
        self.cohort_offset = np.zeros(num_topics, np.float32)
        self.phase = 0
        self.event_count = 0
        self.trending_topic = -1
        # Seasonal regimes are fixed at creation so that regimes really recur.
        self.profiles: dict[int, np.ndarray] = {}
        for i, c in enumerate(self.components):
            if c.process == "seasonal":
                n = c.process_params["num_profiles"]
                scale = c.process_params["scale"]
                self.profiles[i] = np.stack(
                    [start] + [random_profile(rng, num_topics, scale) for _ in range(n - 1)]
                )
        self.mean = start.copy()
        self.new_user_mean = start.copy()

    # --------------------------------------------------------------------------------- per tick
    def tick(self, clock: int, rng: np.random.Generator) -> bool:
        """Advance to ``clock``; return whether an abrupt drift event happened."""
        event = False
        for i, c in enumerate(self.components):
            if self._fires(c, clock, rng):
                event |= self._apply(i, c, rng)
        if self.glide_pos < self.glide_len:
            self.glide_pos += 1
        glide = self._glide_value()
        if self.trajectory is not None:
            glide = glide + self.replay_offset(clock)
        self.mean = np.clip(glide + self.ou_offset, -1.0, 1.0).astype(np.float32)
        self.new_user_mean = np.clip(self.mean + self.cohort_offset, -1.0, 1.0).astype(np.float32)
        if event:
            self.event_count += 1
            if not self.profiles:
                self.phase = self.event_count
        return event

    def replay_value(self, clock: int) -> np.ndarray:
        """The replayed population mean at ``clock``: ``trajectory[w]`` at the centre of window
        ``w`` (tick ``(w + ½)·window_ticks``), linear in between, ``trajectory[0]`` before the
        first centre and the last window's mean after the last one (it holds)."""
        traj = self.trajectory
        assert traj is not None, "replay needs a trajectory"
        x = min(max(clock / self.window_ticks - 0.5, 0.0), len(traj) - 1.0)
        w = int(np.floor(x))
        f = x - w
        if f == 0.0 or w + 1 >= len(traj):
            return traj[w].copy()
        return (1.0 - f) * traj[w] + f * traj[w + 1]

    def replay_offset(self, clock: int) -> np.ndarray:
        """How far the replay has moved the mean from where it started (``trajectory[0]``)."""
        start = self.replay_value(0)
        return (self.replay_value(clock) - start).astype(np.float32)

    def _glide_value(self) -> np.ndarray:
        if self.glide_len == 0:
            return self.glide_to
        w = self.glide_pos / self.glide_len
        return (1.0 - w) * self.glide_from + w * self.glide_to

    def _move_to(self, target: np.ndarray, ramp: int) -> None:
        self.glide_from = self._glide_value().astype(np.float32)
        self.glide_to = np.asarray(target, np.float32)
        self.glide_len, self.glide_pos = ramp, 0

    @staticmethod
    def _fires(c: DriftComponent, clock: int, rng: np.random.Generator) -> bool:
        p = c.schedule_params
        if c.schedule == "none":
            return False
        if c.schedule == "periodic":
            return clock > p["offset"] and (clock - p["offset"]) % p["period"] == 0
        if c.schedule == "poisson":
            return bool(rng.random() < p["rate"])  # memoryless: one Bernoulli per tick
        if c.schedule == "changepoints":
            return clock in p["times"]
        # burst: Bernoulli(rate) per tick inside the first `length` ticks of every period
        u = rng.random()
        return (clock % p["period"]) < p["length"] and bool(u < p["rate"])

    def _apply(self, i: int, c: DriftComponent, rng: np.random.Generator) -> bool:
        p = c.process_params
        if c.process == "ou":
            z = rng.standard_normal(self.k).astype(np.float32)
            self.ou_offset += -p["theta"] * self.ou_offset + p["sigma"] * z
            return False
        if c.process == "random_walk":
            self.ou_offset += p["sigma"] * rng.standard_normal(self.k).astype(np.float32)
            np.clip(self.ou_offset, -1.0, 1.0, out=self.ou_offset)
            return False
        if c.process == "jump":
            self._move_to(random_profile(rng, self.k, p["scale"]), p["ramp"])
        elif c.process == "seasonal":
            profiles = self.profiles[i]
            self.phase = (self.phase + 1) % len(profiles)
            self._move_to(profiles[self.phase], p["ramp"])
        elif c.process == "trending":
            target = self.glide_to.copy()
            if self.trending_topic >= 0:  # the previous trend fades back to mildly liked
                target[self.trending_topic] = min(target[self.trending_topic], 0.2)
            self.trending_topic = int(rng.integers(self.k))
            target[self.trending_topic] = p["level"]
            self._move_to(target, p["ramp"])
        elif c.process == "cohort":
            self.cohort_offset = random_profile(rng, self.k, p["scale"]) - self.mean
        return True

    # --------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "glide_from": self.glide_from.copy(),
            "glide_to": self.glide_to.copy(),
            "glide_len": self.glide_len,
            "glide_pos": self.glide_pos,
            "ou_offset": self.ou_offset.copy(),
            "cohort_offset": self.cohort_offset.copy(),
            "phase": self.phase,
            "event_count": self.event_count,
            "trending_topic": self.trending_topic,
            "mean": self.mean.copy(),
            "new_user_mean": self.new_user_mean.copy(),
            "profiles": {str(k): v.copy() for k, v in self.profiles.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in _ARRAY_STATE:
            setattr(self, key, np.array(state[key], np.float32))
        for key in _INT_STATE:
            setattr(self, key, int(state[key]))
        self.profiles = {int(k): np.array(v, np.float32) for k, v in state["profiles"].items()}


_ARRAY_STATE = ("glide_from", "glide_to", "ou_offset", "cohort_offset", "mean", "new_user_mean")
_INT_STATE = ("glide_len", "glide_pos", "phase", "event_count", "trending_topic")
