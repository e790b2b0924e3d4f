"""``python -m experiments.bench`` = ``recsim-bench``."""

import sys

from experiments.bench.cli import main

sys.exit(main())
