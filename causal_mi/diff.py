"""``causal-mi diff OLD NEW``: what changed between two runs' ``results.json``.

Reported: claims whose verdict changed, properties whose status changed, claims and
quantities present in one run only, and quantities that *moved*: each run's estimate lies
outside the other run's interval (a symmetric rule: noise inside either interval is not a
move). Two runs of the same file on the same model give no difference (the measurements are
deterministic for a seed). Exit 0 when nothing changed, 1 when something did, 2 on a file
that is not a results.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from causal_mi.report.results_json import read


@dataclass(frozen=True)
class Change:
    """One difference; ``kind``: verdict | property | moved | added | removed."""

    kind: str
    name: str
    message: str
    location: str = ""  # where the new run's file states it (claims)
    severity: str = "error"  # error: a verdict changed; warning: an effect moved


def load(path: Path) -> dict[str, Any]:
    """A results.json (or a folder holding one); :class:`InputError` otherwise."""
    return read(path)


def _fmt(q: dict[str, Any]) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:+.3f}"

    return f"{f(q.get('point'))} [{f(q.get('lower'))}, {f(q.get('upper'))}]"


def _status(claim: dict[str, Any]) -> str:
    """holds | fails | not decidable | undefined (schema v1 results carry only ``passed``)."""
    return claim.get("status") or ("holds" if claim["passed"] else "fails")


def moved(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Each estimate outside the other's interval."""
    vals = [old.get(k) for k in ("point", "lower", "upper")] + [
        new.get(k) for k in ("point", "lower", "upper")
    ]
    if any(v is None or not math.isfinite(v) for v in vals):
        return False
    (op, ol, ou), (np_, nl, nu) = vals[:3], vals[3:]
    return not (ol <= np_ <= ou) and not (nl <= op <= nu)


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two results documents, claims first."""
    out: list[Change] = []
    old_claims = {c["text"]: c for c in old.get("claims", [])}
    new_claims = {c["text"]: c for c in new.get("claims", [])}
    for text, c in new_claims.items():
        before = old_claims.get(text)
        if before is None:
            out.append(Change("added", text, f"new claim: {text}", c.get("location", "")))
        elif _status(before) != _status(c):
            out.append(
                Change(
                    "verdict",
                    text,
                    f"verdict changed: {text}: {_status(before)} -> {_status(c)}"
                    f" ({_fmt(before)} -> {_fmt(c)})",
                    c.get("location", ""),
                )
            )
    for text in old_claims.keys() - new_claims.keys():
        out.append(Change("removed", text, f"claim no longer stated: {text}"))
    old_props = {p["text"]: p for p in old.get("properties", [])}
    for p in new.get("properties", []):
        before = old_props.get(p["text"])
        if before is not None and before["status"] != p["status"]:
            out.append(
                Change(
                    "property",
                    p["text"],
                    f"property changed: {p['text']}: {before['status']} -> {p['status']}",
                    new.get("hypothesis", {}).get("file", ""),
                )
            )
    where = {c["quantity"]: c.get("location", "") for c in new.get("claims", [])}
    stated = {}
    for c in new.get("claims", []):
        stated.setdefault(c["quantity"], []).append(c["text"])
    oq, nq = old.get("quantities", {}), new.get("quantities", {})
    for label in sorted(oq.keys() & nq.keys()):
        if moved(oq[label], nq[label]):
            out.append(
                Change(
                    "moved",
                    label,
                    f"moved beyond its interval: {label}"
                    + (f" (claim {', '.join(stated[label])})" if label in stated else "")
                    + f": {_fmt(oq[label])} -> {_fmt(nq[label])}",
                    where.get(label, ""),
                    severity="warning",
                )
            )
    return out


def context_lines(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What the two runs were (model, weights, task), so a reader sees what was compared."""
    lines = []
    for tag, d in (("old", old), ("new", new)):
        m, t = d.get("model", {}), d.get("task", {})
        lines.append(
            f"{tag}: {d.get('hypothesis', {}).get('name')} on {m.get('ref')} (weights "
            f"{str(m.get('weights_sha256'))[:12]}), task {t.get('name')} n = {t.get('n')}, "
            f"{'PASS' if d.get('passed') else 'FAIL'}"
        )
    return lines


def render(changes: list[Change], old: dict, new: dict, fmt: str) -> str:
    """``text`` (a summary for people), ``github`` (workflow annotations) or ``json``."""
    if fmt == "json":
        return json.dumps(
            {"schema": "causal-mi/diff/v1", "changes": [asdict(c) for c in changes]}, indent=1
        )
    if fmt == "github":
        from causal_mi.report.github import annotation

        lines = [
            annotation(c.severity, c.message, location=c.location, title=f"causal-mi {c.kind}")
            for c in changes
        ]
        lines.append(annotation("notice", f"causal-mi diff: {len(changes)} difference(s)"))
        return "\n".join(lines)
    lines = context_lines(old, new)
    if not changes:
        lines.append(
            "no difference: every verdict is the same and no estimate moved beyond its interval"
        )
    else:
        lines.append(f"{len(changes)} difference(s):")
        lines += [f"  {c.message}" for c in changes]
    return "\n".join(lines)
