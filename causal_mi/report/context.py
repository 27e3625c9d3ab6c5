"""What every report writer reads: one frozen bundle per verified hypothesis."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from causal_mi.effects.crosscheck import CrossCheck
from causal_mi.effects.measure import Measurement
from causal_mi.models.loading import LoadedModel
from causal_mi.properties.result import PropertyResult
from causal_mi.tasks.base import Task
from causal_mi.verify.verdicts import Verdict

_PACKAGES = (
    "causal-mi",
    "torch",
    "transformer-lens",
    "transformers",
    "numpy",
    "dowhy",
    "z3-solver",
    "networkx",
    "pydantic",
)


@dataclass(frozen=True)
class ReportContext:
    """One verified hypothesis: the verdict, every measurement, the property results, the
    model and provenance (what ``causal_mi.verify_file`` returns and every writer reads)."""

    verdict: Verdict
    measurement: Measurement
    task: Task
    model_info: ModelInfo
    provenance: dict[str, Any]
    properties: list[PropertyResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    views: Any = None  # analysis.views.Views (measured before rendering), for the HTML report
    ablations: dict[str, Any] = field(default_factory=dict)  # claim -> ablation -> decision
    # DoWhy's re-estimate of the indirect / direct / total claims; None: not requested
    dowhy: CrossCheck | None = None
    causal_model: Any = None  # graph.analysis.CausalModelResult; None: not analysed
    runs: dict[str, Any] | None = None  # the run plan (engine.runplan.RunPlan.to_json)

    @property
    def passed(self) -> bool:
        """The file's verdict (SPEC 6, ``verify`` exits 0): every claim holds and no property
        fails or holds only vacuously."""
        return self.verdict.passed and not any(p.failed for p in self.properties)


@dataclass(frozen=True)
class ModelInfo:
    """What a report says about the model a hypothesis was verified on."""

    ref: str  # as the file wrote it: zoo:<name> | hf:<id> | path:<dir>
    source: str  # the resolved directory or hub id
    weights_sha256: str
    n_layers: int
    n_heads: int
    d_mlp: int
    attn_only: bool
    device: str
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (results.json's ``model``)."""
        return dict(self.__dict__)

    def __getitem__(self, key: str) -> Any:  # read access by name, as the earlier dict
        return self.to_dict()[key]


def model_info(model: LoadedModel) -> ModelInfo:
    d = model.dims
    return ModelInfo(
        ref=model.ref,
        source=model.source,
        weights_sha256=model.weights_sha256,
        n_layers=d.n_layers,
        n_heads=d.n_heads,
        d_mlp=d.d_mlp,
        attn_only=d.attn_only,
        device=model.device,
        precision=model.precision,
    )


def provenance(seed: int, started: float) -> dict[str, Any]:
    versions = {}
    for p in _PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 2),
    }
