"""The evaluation with references: the agent's ``eval/*`` plus the references' returns on the same
users, so that "how good is this policy" has a yardstick measured in the same run.

Time to a good policy (:mod:`experiments.analysis.time_to_good`) needs, at every evaluation, the
myopic oracle's evaluation return and, where users return (``returning_users=True``, e.g.
``LongTerm-v0``), the long-term reference's. They are not constants: the world differs by seed and
drifts over the run. So at every evaluation this part evaluates ``oracle`` and ``oracle_longterm``
on a fresh follower of the same world from the *same* seed as the agent's evaluation: the same
evaluation users, at the same moment. They read the ground truth, never learn, and their
evaluation touches neither the training stream nor the agent (the follower env has its own RNG).

Keys (``metrics.csv`` and, from the last evaluation, ``summary.json``):
``eval/ref_oracle_return`` and ``eval/ref_longterm_return`` (only with returning users).

Select it with ``protocol/parts=with_references`` (``conf/protocol/parts/with_references.yaml``):
it replaces the ``eval`` part and costs one (two with returning users) extra evaluation each time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from experiments.analysis.schema import REFERENCE_KEYS
from experiments.run.evaluation import evaluate_return
from experiments.run.steps import Evaluation, Run

__all__ = ["ReferenceEvaluation"]


class ReferenceEvaluation(Evaluation):
    """:class:`~experiments.run.steps.Evaluation` plus the references on the same users (module
    doc). Same schedule, same state (a run resumes with either part)."""

    def evaluate(self, run: Run) -> None:
        index = self.state.eval_index
        super().evaluate(run)
        if self.make_eval_env is None or run.agent is None or self.state.eval_index == index:
            return
        seed = int(np.random.SeedSequence([self.settings.eval_seed, index]).generate_state(1)[0])
        with run.timer.paused():
            refs = reference_returns(self.make_eval_env, seed)
            self.state.last_eval.update(refs)
            run.writer.write(run.num_timesteps, refs)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        last = self.state.last_eval
        out.update({key: last.get(key, math.nan) for key in REFERENCE_KEYS if key in last})
        return out


def reference_returns(make_eval_env: Any, seed: int) -> dict[str, float]:
    """``eval/ref_oracle_return`` (and ``eval/ref_longterm_return`` where users return): the
    references' ``eval/return`` on fresh followers of the world from ``seed``."""
    from agents.baselines.longterm import OracleLongTermAgent
    from agents.baselines.oracle import OracleAgent

    env = make_eval_env()
    out = {"eval/ref_oracle_return": evaluate_return(OracleAgent(env), env, seed=seed)}
    if bool(getattr(env.config, "returning_users", False)):
        env = make_eval_env()
        out["eval/ref_longterm_return"] = evaluate_return(OracleLongTermAgent(env), env, seed=seed)
    return out
