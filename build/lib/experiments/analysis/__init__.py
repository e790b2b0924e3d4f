"""Analysis: the metric schema, lifelong metrics, statistics, and ``recsim-compare``.

:mod:`.schema`, :mod:`.series`, :mod:`.lifelong`, :mod:`.regimes` and :mod:`.stats` are pure (no
I/O, no runner imports): the runner computes its metrics with them. :mod:`.compare` reads finished
runs and sits above the runner.
"""
