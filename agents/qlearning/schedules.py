"""Exploration and learning-rate schedules.

A schedule is a pure function of a step count (user-steps), so its *position* is just that count:
the agent checkpoints the counts, and a resumed run reads exactly the values an uninterrupted run
would have read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

    from agents.base import StepCallback


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` at step 0, linearly to ``end`` at step ``duration``, then ``end`` (SB3's shape)."""

    start: float
    end: float
    duration: float

    def __call__(self, step: int) -> float:
        if step >= self.duration:
            return self.end
        return self.start + (step / self.duration) * (self.end - self.start)


def epsilon_schedule(start: float, end: float, fraction: float, horizon: int) -> LinearSchedule:
    """ε goes from ``start`` to ``end`` over the first ``fraction`` of ``horizon`` user-steps."""
    return LinearSchedule(start, end, fraction * horizon)


def lr_schedule(kind: str, lr: float, lr_end: float, horizon: int) -> LinearSchedule:
    """``constant``: always ``lr``; ``linear``: from ``lr`` to ``lr_end`` over ``horizon`` steps."""
    if kind == "constant":
        return LinearSchedule(lr, lr, 1.0)
    if kind == "linear":
        return LinearSchedule(lr, lr_end, float(horizon))
    raise ValueError(f"lr_schedule={kind!r} is invalid: allowed 'constant', 'linear'")


class ScheduledLearner:
    """The ε and learning-rate schedules of our Q-learners (``DQNAgent``, ``PQNAgent``), read at
    ``observed_steps`` over ``schedule_horizon`` user-steps.

    A mixin placed before :class:`agents.base.OnlineAgent`: the horizon comes from the config's
    ``total_steps`` or, as in SB3's ``learn``, from the first ``learn()`` call.
    """

    config: Any  # a config with epsilon_*, exploration_fraction, lr, lr_schedule, lr_end
    observed_steps: int
    schedule_horizon: int | None

    def _horizon(self) -> int:
        if self.schedule_horizon is None:
            raise ValueError(
                "the exploration / learning-rate schedules need a horizon: set total_steps in the "
                f"{type(self).__name__} config or call learn() (its total_steps is used) before "
                "acting with explore=True"
            )
        return self.schedule_horizon

    @property
    def epsilon(self) -> float:
        """Exploration rate at the current position (``observed_steps``)."""
        cfg = self.config
        schedule = epsilon_schedule(
            cfg.epsilon_start, cfg.epsilon_end, cfg.exploration_fraction, self._horizon()
        )
        return schedule(self.observed_steps)

    @property
    def learning_rate(self) -> float:
        cfg = self.config
        return lr_schedule(cfg.lr_schedule, cfg.lr, cfg.lr_end, self._horizon())(
            self.observed_steps
        )

    def learn(self, total_steps: int, callback: StepCallback | None = None) -> Self:
        """Run ``total_steps`` more user-steps; the first call fixes the schedule horizon when
        ``total_steps`` is not set in the config (as SB3's ``learn`` does)."""
        if self.schedule_horizon is None:
            self.schedule_horizon = int(total_steps)
        super().learn(total_steps, callback)  # type: ignore[misc]
        return self
