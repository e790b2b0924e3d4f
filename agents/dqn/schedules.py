"""Exploration and learning-rate schedules.

A schedule is a pure function of a step count (user-steps), so its *position* is just that count:
the agent checkpoints the counts, and a resumed run reads exactly the values an uninterrupted run
would have read.
"""

from __future__ import annotations

from dataclasses import dataclass


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
