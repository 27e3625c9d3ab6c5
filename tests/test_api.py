"""The public Python API: lazy names, and verify_file usable more than once per process."""

from __future__ import annotations

from pathlib import Path

import causal_mi

TRUE = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo" / "handmade-induction"


def test_verify_file_twice_and_write_outputs(tmp_path):
    a = causal_mi.verify_file(str(TRUE / "true.yaml"))
    b = causal_mi.verify_file(str(TRUE / "false-wrong-edge.yaml"))
    assert a.verdict.passed and not b.verdict.passed
    causal_mi.write_outputs(a, str(tmp_path / "out"))
    assert (tmp_path / "out" / "report.md").is_file()


def test_exports_resolve():
    for name in causal_mi.__all__:
        assert getattr(causal_mi, name) is not None
    assert str(causal_mi.parse_site("L1H3.k")) == "L1H3.k"


def test_verify_file_returns_frozen_typed_results():
    import dataclasses

    import pytest

    ctx = causal_mi.verify_file(str(TRUE / "true.yaml"))  # claims and properties
    assert isinstance(ctx, causal_mi.ReportContext)
    assert isinstance(ctx.verdict, causal_mi.Verdict)
    assert all(isinstance(c, causal_mi.ClaimVerdict) for c in ctx.verdict.claims)
    assert isinstance(ctx.measurement, causal_mi.Measurement)
    assert all(isinstance(e, causal_mi.Estimate) for e in ctx.measurement.estimates.values())
    assert isinstance(ctx.model_info, causal_mi.ModelInfo)
    assert ctx.properties and all(isinstance(p, causal_mi.PropertyResult) for p in ctx.properties)
    for obj in (ctx, ctx.verdict, ctx.measurement, ctx.model_info, ctx.properties[0]):
        field = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)
    p = ctx.properties[0]
    assert p["status"] == p.status and dict(p) == p.to_dict()  # read-only mapping view
    assert ctx.model_info["ref"] == ctx.model_info.ref == "zoo:handmade-induction"
    with pytest.raises(ValueError, match="valid"):
        causal_mi.PropertyResult(name="x", text="x", status="maybe", detail="")
