"""pytest integration: hypothesis files collected as test items, one item per claim.

Run ``pytest hypotheses/induction.yaml`` (files named on the command line are collected), or
set ``causal_mi_glob = hypotheses/*.yaml`` in the pytest ini options to collect matching
files during normal discovery. Each file is measured once; each claim becomes one test that
fails with the decision rule it broke. A file that cannot load fails as one item.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "causal_mi_glob", "glob(s) of hypothesis files to collect", type="linelist", default=[]
    )


def _wanted(file_path: Path, parent: pytest.Collector) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    if parent.session.isinitpath(file_path):
        return True
    root = Path(str(parent.config.rootpath))
    try:
        rel = file_path.relative_to(root).as_posix()
    except ValueError:
        return False
    return any(fnmatch(rel, g) for g in parent.config.getini("causal_mi_glob"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _wanted(file_path, parent):
        return HypothesisFile.from_parent(parent, path=file_path)
    return None


class HypothesisFile(pytest.File):
    def collect(self):
        from causal_mi import pipeline
        from causal_mi.errors import CausalMIError

        try:
            # items are verdicts: the informational DoWhy / graph-analysis stages are skipped
            # (an 'implications hold' claim still runs the implications it needs)
            ctx = pipeline.evaluate(pipeline.prepare(self.path), dowhy=False)
        except CausalMIError as exc:
            yield LoadFailure.from_parent(self, name="load", error=str(exc))
            return
        for claim in ctx.verdict.claims:
            yield ClaimItem.from_parent(
                self, name=claim.claim.claim.text, verdict=claim, valid=ctx.verdict.valid
            )
        for prop in ctx.properties:
            yield PropertyItem.from_parent(self, name=f"property: {prop.text}", prop=prop)


class ClaimFailed(Exception):
    pass


class ClaimItem(pytest.Item):
    def __init__(self, *, verdict: Any, valid: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.verdict = verdict
        self.valid = valid

    def runtest(self) -> None:
        if not self.verdict.passed:
            raise ClaimFailed(self.verdict)

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, ClaimFailed):
            v = self.verdict
            e = v.estimate
            why = v.why or v.rule
            return (
                f"claim '{v.claim.claim.text}' fails at {v.claim.location}: estimate "
                f"{e.point:+.4f}, CI [{e.lower:+.4f}, {e.upper:+.4f}]; {why}"
            )
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.verdict.claim.location.line - 1, f"claim: {self.name}"


class PropertyItem(pytest.Item):
    def __init__(self, *, prop: dict, **kwargs: Any):
        super().__init__(**kwargs)
        self.prop = prop

    def runtest(self) -> None:
        if self.prop.status == "not checked":
            pytest.skip(self.prop.detail)
        if self.prop.status in ("fails", "vacuous"):
            raise AssertionError(self.prop.detail)


class LoadFailure(pytest.Item):
    def __init__(self, *, error: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ClaimFailed(self.error)

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        return f"hypothesis file could not be loaded (nothing measured):\n{self.error}"
