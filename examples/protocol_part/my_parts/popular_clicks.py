"""A user-defined protocol part: a running count of clicks on popular items.

Added to a run from config, without touching the runner (conf/protocol/parts/popular_clicks.yaml):

    PYTHONPATH=examples/protocol_part recsim-train protocol=tiny \\
        'hydra.searchpath=[file://examples/protocol_part/conf]' 'protocol/parts=[default,popular_clicks]'

It follows the part protocol of :class:`experiments.run.steps.ProtocolCallback`: hooks, a summary,
and ``state_dict`` / ``load_state_dict`` so that a resumed run continues the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import Transition
from experiments.run.steps import ProtocolCallback, Run
from recsim_env.observation import ObsLayout, get_obs_layout


class PopularClicks(ProtocolCallback):
    """Clicks on items whose observed popularity is above ``threshold`` (as the user saw them):
    ``custom/popular_clicks`` (running count) and ``custom/popular_click_share`` (of all clicks),
    logged every ``protocol.log_every`` user-steps and written to ``summary.json``."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"invalid threshold={threshold!r} (allowed: 0 <= threshold <= 1)")
        self.threshold = float(threshold)
        self.popular_clicks = 0
        self.clicks = 0
        self._layout: ObsLayout | None = None

    def on_training_start(self, run: Run) -> None:
        self._layout = get_obs_layout(run.train_env)

    def on_step(self, run: Run, t: Transition, info: Mapping[str, Any]) -> None:
        if self._layout is None or "clicked" not in info:
            return
        clicked = np.asarray(info["clicked"], dtype=bool).reshape(-1)
        popularity = self._layout.popularity(np.asarray(t.obs))  # (B, C): what was shown
        actions = np.asarray(t.actions)
        rows = np.arange(len(clicked))
        if actions.ndim == 2:  # a slate: the clicked position's item
            position = np.maximum(np.asarray(info["clicked_position"]).reshape(-1), 0)
            actions = actions[rows, position]
        popular = popularity[rows, actions.reshape(-1)] > self.threshold
        self.clicks += int(clicked.sum())
        self.popular_clicks += int((clicked & popular).sum())
        # log on the online metrics' schedule, once this step is counted (``on_window`` runs
        # inside the ``online`` part's step, before the parts listed after it have seen the step)
        step, every = run.num_timesteps, run.settings.log_every
        if step // every > (step - len(clicked)) // every:
            run.writer.write(step, self.summary())

    def summary(self) -> dict[str, Any]:
        share = self.popular_clicks / self.clicks if self.clicks else float("nan")
        return {"custom/popular_clicks": self.popular_clicks, "custom/popular_click_share": share}

    def state_dict(self) -> dict[str, Any]:
        return {"popular_clicks": self.popular_clicks, "clicks": self.clicks}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.popular_clicks = int(state["popular_clicks"])
        self.clicks = int(state["clicks"])
