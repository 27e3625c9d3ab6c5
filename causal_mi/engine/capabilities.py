"""Which executor can run a model's interventions, decided once per model, with the reason
where one cannot.

Three executors stand behind the engine: hook passes through the bridge (every model the
loader accepts, node level), the engine's own forward pass (path patching: edge-level
faithfulness, minimality and edge effects) and the incremental engine (sweeps that start at
the patched layer). The last two read the model's weights and compose its architecture's
features (:mod:`causal_mi.engine.blocks`); a model using a feature they do not implement
gets the sentence naming it here, and callers choose by asking, never by catching a failure
halfway through a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Capabilities:
    """``path`` / ``incremental``: None when that executor runs the model, else why not (one
    sentence). Hook passes run every loaded model. ``encoder``: bidirectional attention,
    where path patching is undefined rather than unimplemented (edges are an input error)."""

    model_type: str
    path: str | None
    incremental: str | None
    encoder: bool = False

    def describe(self) -> str:
        """One line per executor, for ``causal-mi plan`` and error messages."""
        ok = "available"
        return "\n".join(
            [
                "hook passes (node level): available",
                f"path patching (edge level): {self.path or ok}",
                f"incremental sweeps: {self.incremental or ok}",
            ]
        )


def capabilities(model: Any) -> Capabilities:
    """The executors available for a loaded model (computed once, kept in its ``derived``
    cache)."""
    cache = getattr(model, "derived", None)
    found = getattr(cache, "capabilities", None)
    if found is not None:
        return found
    from causal_mi.models.arch import model_type
    from causal_mi.models.encoders import EDGES_REFUSED, is_encoder
    from causal_mi.models.weights import UnsupportedArchitecture, weights_for

    bridge = model.bridge
    if is_encoder(bridge):
        mt = str(bridge.cfg.model_type)
        why = EDGES_REFUSED.format(model_type=mt)
        found = Capabilities(mt, why, why, encoder=True)
    else:
        mt = model_type(bridge)
        try:
            weights_for(model)  # reads every weight the own forward pass needs, or says why
            why = None
        except UnsupportedArchitecture as exc:
            why = str(exc)
        found = Capabilities(mt, why, why)
    if cache is not None:
        cache.capabilities = found
    return found
