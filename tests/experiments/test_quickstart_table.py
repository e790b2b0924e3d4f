"""``make run``'s table says under it what each metric column means, and why a policy that learns
nothing can look good at recovery (issue 24: random had the best recovered share, unexplained)."""

from __future__ import annotations

from experiments.analysis.schema import QUICKSTART_COLUMNS
from experiments.quickstart import COLUMN_MEANINGS, RECOVERY_CAVEAT, print_table


def test_every_column_is_explained_under_the_table(capsys):
    rows = [
        {"job": str(i), "agent": agent, "env": "drifting", "seed": 0, "status": "completed"}
        | {key: 0.5 + i for key in QUICKSTART_COLUMNS}
        for i, agent in enumerate(("dqn", "random"))
    ]
    print_table(rows)
    out = capsys.readouterr().out
    table, legend = out.split("what the columns mean:")
    assert "random" in table and "dqn" in table
    for key in QUICKSTART_COLUMNS:
        assert f"  {key}: {COLUMN_MEANINGS[key]}" in legend
    assert RECOVERY_CAVEAT in legend and "nothing to lose" in RECOVERY_CAVEAT
