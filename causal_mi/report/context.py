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
    verdict: Verdict
    measurement: Measurement
    task: Task
    model_info: dict[str, Any]
    provenance: dict[str, Any]
    properties: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    views: Any = None  # report.views.Views, for the HTML report
    ablations: dict[str, Any] = field(default_factory=dict)  # claim -> ablation -> decision
    # DoWhy's re-estimate of the indirect / direct / total claims; None: not requested
    dowhy: CrossCheck | None = None
    causal_model: Any = None  # graph.analysis.CausalModelResult; None: not analysed


def model_info(model: LoadedModel) -> dict[str, Any]:
    d = model.dims
    return {
        "ref": model.ref,
        "source": model.source,
        "weights_sha256": model.weights_sha256,
        "n_layers": d.n_layers,
        "n_heads": d.n_heads,
        "d_mlp": d.d_mlp,
        "attn_only": d.attn_only,
        "device": model.device,
    }


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
