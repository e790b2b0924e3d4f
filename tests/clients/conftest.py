"""The client tests are all slow (``make test-slow`` / ``make test-clients``): under the default
``-m 'not slow'`` this folder is not even collected, so that ``make test`` never imports TorchRL or
RLlib (seconds of imports for tests that would all be deselected)."""

from __future__ import annotations

from pathlib import Path


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if " ".join(str(config.option.markexpr or "").split()) == "not slow":
        return True
    return None
