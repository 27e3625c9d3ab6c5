"""Shared runs of the zoo files the graph tests read (each analysed once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo"
MEDIATION = ZOO / "handmade-mediation"


@pytest.fixture(scope="session")
def evaluated():
    """``evaluated(path)``: the pipeline's verdict-only ReportContext for a file (the graph
    analysis runs only for what ``implications hold`` needs), cached."""
    from causal_mi import pipeline

    cache: dict = {}

    def run(path: Path):
        if path not in cache:
            cache[path] = pipeline.evaluate(pipeline.prepare(path), dowhy=False)
        return cache[path]

    return run


@pytest.fixture(scope="session")
def analysed():
    """``analysed(path)``: (measurement, full CausalModelResult) for a file, cached."""
    from causal_mi import pipeline
    from causal_mi.effects.measure import measure
    from causal_mi.graph.analysis import analyse

    cache: dict = {}

    def run(path: Path):
        if path not in cache:
            prep = pipeline.prepare(path)
            m = measure(prep.hypothesis, prep.model, prep.task)
            cache[path] = (m, analyse(prep.hypothesis, prep.model, prep.task, m))
        return cache[path]

    return run
