"""Frames made for DoWhy keep Python-string labels inside ``object_labels`` only, and
DoWhy's estimates on them are the estimates on pandas' default frames, to the bit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from causal_mi.effects.crosscheck import MediationData, _fit, quiet_dowhy
from causal_mi.stats.frames import object_labels


def test_labels_are_objects_inside_and_the_default_outside():
    default = pd.DataFrame({"T": [0, 1]}).columns.dtype
    with object_labels():
        assert pd.DataFrame({"T": [0, 1]}).columns.dtype == object
    after = pd.DataFrame({"T": [0, 1]}).columns.dtype
    assert after == default
    assert str(default) != "object"  # pandas 3: Arrow-backed labels (the case it changes)


def _data(seed: int) -> MediationData:
    rs = np.random.RandomState(seed)
    m0, m1 = rs.randn(40), 1.0 + rs.randn(40)
    return MediationData(0.5 * m0 + rs.randn(40) * 0.1, 2 * m1 + 1 + rs.randn(40) * 0.1, m0, m1)


def _estimate(data: MediationData, kind: str, objects: bool) -> float:
    with quiet_dowhy() if objects else warnings.catch_warnings():
        if not objects:
            warnings.simplefilter("ignore")  # DoWhy's pandas deprecations, unfiltered here
        frame = data.frame()
        assert (frame.columns.dtype == object) == objects
        return _fit(frame if kind != "total" else frame[["T", "Y"]], kind)[0]


def test_dowhy_estimates_equal_those_on_default_frames():
    for kind in ("indirect", "direct", "total"):
        assert _estimate(_data(1), kind, True) == _estimate(_data(1), kind, False), kind
    # the comparison can fail: other data, another estimate
    assert _estimate(_data(2), "indirect", True) != _estimate(_data(1), "indirect", False)
