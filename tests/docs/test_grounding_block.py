"""The "Grounded in real logs" page's Python block (``docs/grounding.md``; in the README before
issue 20) runs as written (on a small log made here and
the synthetic MovieLens calibration every test sees: see ``tests/conftest.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

PAGE = Path(__file__).resolve().parents[2] / "docs" / "grounding.md"


def grounding_python_block() -> str:
    section = PAGE.read_text().split("# Grounded in real logs", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one Python block"
    return blocks[0]


def test_the_grounding_page_block_runs(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    log = pd.DataFrame(
        {
            "uid": rng.integers(0, 60, n),
            "iid": rng.integers(0, 200, n),
            "ts": np.sort(rng.integers(0, 10**6, n)),
        }
    ).drop_duplicates(["uid", "iid", "ts"])
    log.to_csv(tmp_path / "my_log.csv", index=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(grounding_python_block(), "docs/grounding.md", "exec"), namespace)
    assert (tmp_path / "cal" / "calibration.npz").is_file()
    # the block's own objects: a calibrated env with the log's ids in info
    assert namespace["info"]["item_id"].shape == (namespace["env"].unwrapped.config.num_candidates,)
