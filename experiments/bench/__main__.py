"""``python -m experiments.bench`` = ``recsim-bench``."""

from experiments.bench.cli import main

main()
