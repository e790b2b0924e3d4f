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


def render_rgb(core, row: int = 0, height: int = 64, bar: int = 8) -> np.ndarray:
    """A small bar-chart image: the user's interest per topic (green up / red down), then the
    expected reward of each candidate (blue, scaled to the best). Enough for SB3's video recorder."""
    interest = core.users.interest[row]
    expected = core._expected[row]
    values = np.concatenate([interest, [0.0], expected / max(float(expected.max()), 1e-8)])
    colours = [(40, 160, 60) if v >= 0 else (200, 50, 50) for v in interest] + [(255, 255, 255)]
    colours += [(50, 90, 200)] * len(expected)
    image = np.full((height, bar * len(values), 3), 255, np.uint8)
    mid = height // 2
    for j, (v, colour) in enumerate(zip(values, colours, strict=True)):
        size = round(abs(float(v)) * (mid - 1))
        top, bottom = (mid - size, mid) if v >= 0 else (mid, mid + size)
        image[top:bottom, j * bar : (j + 1) * bar - 1] = colour
    image[mid, :] = 0
    return image
