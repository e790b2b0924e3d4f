"""Streaming drift detectors on an agent's own signals.

A drift-aware agent cannot read ``info["drift_event"]`` (that is ground truth, for metrics only); it
must notice the change in what it observes itself: its reward, its TD error, its click rate. These
detectors watch one scalar stream and say when its mean has changed:

- :class:`PageHinkley`: a CUSUM-style sequential test for a mean shift in one direction (or both).
  O(1) time and memory per update; tuned by ``delta`` (shift magnitude to ignore) and ``threshold``
  (evidence needed), both in the units of the signal.
- :class:`ADWIN`: ADaptive WINdowing (Bifet & Gavaldà, 2007, the ADWIN2 variant with an exponential
  histogram). It keeps a window whose mean is consistent with the recent data and drops its oldest
  part whenever two sub-windows have significantly different means (a Hoeffding/Bernstein-style
  bound with confidence ``delta``). Scale-free: the bound uses the window's own variance.

Both share the interface of :class:`DriftDetector`: ``update(x) -> bool`` for one value per step,
``update_batch(xs) -> bool`` for one step of ``B`` users (the detector sees their mean: one update
per step, so ``threshold`` and ``delta`` refer to the per-step mean, whose noise shrinks like 1/√B),
``update_sequence(values) -> indices`` to replay a recorded stream, ``reset()``, and
``state_dict()``/``load_state_dict()`` for checkpoints: plain data (Python numbers, lists, numpy
arrays), so that :func:`recsim_env.state_io.save_tree` writes it and no pickle is ever needed.
"""

from agents.drift_detection.adwin import ADWIN
from agents.drift_detection.base import DriftDetector
from agents.drift_detection.page_hinkley import PageHinkley

__all__ = ["ADWIN", "DriftDetector", "PageHinkley"]
