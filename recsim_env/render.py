"""A text view of one user and their candidates (``render_mode="ansi"``)."""

from __future__ import annotations

import numpy as np


def render_ansi(core, row: int = 0, top: int = 5) -> str:
    users, cat, cfg = core.users, core.world.catalogue, core.cfg
    u = users.interest[row]
    lines = [
        f"clock {core.world.clock}  drift phase {core.world.drift.phase}  user slot {int(core.slots[row])}",
        f"session step {users.session_step[row]}  budget {users.budget[row]:.1f}  "
        f"satisfaction {users.satisfaction[row]:+.2f}  recent CTR {users.ctr[row]:.2f}",
        "interest  " + " ".join(f"{x:+.2f}" for x in u),
        "fatigue   " + " ".join(f"{x:.2f}" for x in users.fatigue[row]),
        f"top {top} of {cfg.num_candidates} candidates by expected reward:",
    ]
    exp = core._expected[row]
    for j in np.argsort(-exp)[:top]:
        item = core.candidates[row, j]
        lines.append(
            f"  [{j:2d}] item {item:5d} topic {int(cat.topics[item].argmax())} "
            f"q {cat.quality[item]:+.2f} a {cat.appeal[item]:+.2f} "
            f"p(click) {core._click_prob[row, j]:.2f} E[r] {exp[j]:.3f}"
        )
    return "\n".join(lines) + "\n"
