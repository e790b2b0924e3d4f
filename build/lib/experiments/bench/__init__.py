"""``recsim-bench``: simulator throughput (:mod:`.simulator`) and training throughput and learning
(:mod:`.training`), every target a ratio measured within one run (see :mod:`.cli`)."""
