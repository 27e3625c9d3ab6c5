"""Pandas frames for DoWhy, built with Python-object string labels.

pandas 3 stores string labels (a frame's column names) in Arrow-backed arrays, and every
column lookup then converts between Arrow and Python strings. DoWhy's estimators and its
``gcm`` look columns up by name thousands of times per verify (a regression fit indexes
the frame ~25 times), so that conversion was ~30% of the DoWhy cross-check's time
(``benchmarks/dowhy_frames.py``: 24.8 -> 18.1 ms per two-stage regression fit, 9.9 -> 7.1 ms
per linear one, the estimates identical to the bit; numbers in benchmarks/RESULTS.md).
Inside :func:`object_labels`, frames made by causal-mi or DoWhy keep Python strings;
outside it pandas' default is untouched.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def object_labels() -> Iterator[None]:
    """Frames created inside keep string labels as Python objects (pandas' pre-3.0 way)."""
    import pandas as pd

    if "infer_string" not in dir(pd.options.future):  # pragma: no cover
        yield  # a pandas without the option (4.x): nothing to change
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*'future\.infer_string' option")
        with pd.option_context("future.infer_string", False):
            yield
