"""What one finished ``results.json`` becomes in an experiment tracker: one *step* of scalars
(stable tag names), texts (statuses, provenance) and a run config.

Read from the saved file, never from a live measurement, so ``causal-mi export`` works on a
run finished long ago and a tracker shows exactly the numbers the report shows.

Tag names (documented in docs/ci.md; stable across runs of the same file, so a series of
checkpoints draws one curve per tag):

- ``claims/<claim>/estimate``, ``/lower``, ``/upper`` (the interval), ``/threshold``,
  ``/tolerance`` (``~=`` claims only) and ``/verdict``: 1 holds, 0 fails (also a claim with
  no interval, ``undefined``), -1 not decidable (the gap gate failed). ``<claim>`` is the
  claim's text as written in the hypothesis file (whitespace collapsed, ``/`` written as
  ``÷`` so it cannot open a tag group; a repeated text gets `` #2``, `` #3``).
- ``gap/G``, ``gap/lower``, ``gap/upper``, ``gap/decidable`` (1 or 0), ``gap/clean_mean``,
  ``gap/corrupt_mean``.
- ``properties/<name>/status``: 1 holds, 0 fails, -1 vacuous (premise never seen).
- Texts: ``claims/<claim>/status`` (holds, fails, ... with the reason),
  ``properties/<name>/detail``, ``verdict/status`` and ``provenance`` (a Markdown table:
  results file, hypothesis, model and its weights' SHA-256, task, seed, package versions).
- ``verdict/claims``: the file's claim verdict, 1 pass, 0 fail, -1 not decidable;
  ``verdict/passed``: 1 when ``verify`` would exit 0 (claims pass, no property fails or is
  vacuous), else 0; ``verdict/claims_hold``, ``verdict/claims_total``.

A number that ``results.json`` records as ``null`` (undefined, not finite) is not written:
trackers would draw it as 0 or drop it silently.

>>> doc = {"claims": [{"text": "effect(a) >= 0.5", "point": 0.7, "lower": 0.6,
...        "upper": 0.8, "threshold": 0.5, "op": ">=", "status": "holds"}]}
>>> step = from_results(doc, step=0)
>>> step.scalars["claims/effect(a) >= 0.5/verdict"]
1.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLAIM_CODES = {"holds": 1.0, "fails": 0.0, "undefined": 0.0, "not decidable": -1.0}
PROPERTY_CODES = {"holds": 1.0, "fails": 0.0, "vacuous": -1.0}
FILE_CODES = {"pass": 1.0, "fail": 0.0, "not decidable": -1.0}
FAILING_PROPERTIES = ("fails", "vacuous")  # as pipeline.FAILING: they fail the file


@dataclass(frozen=True)
class Step:
    """One results.json as a tracker step: ``scalars`` tag -> value, ``texts`` tag ->
    Markdown, ``config`` (the run's description: hypothesis, model hash, seed, versions)."""

    step: int
    source: str
    scalars: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def tag_part(text: str) -> str:
    """A claim or property text as one tag component: whitespace collapsed, ``/`` (which
    would open a tag group) written as ``÷``.

    >>> tag_part("effect(a)  >=\\n 0.5")
    'effect(a) >= 0.5'
    """
    return re.sub(r"\s+", " ", str(text)).strip().replace("/", "÷")


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    return out


def claim_tags(doc: dict[str, Any]) -> list[str]:
    """The ``<claim>`` component of each claim's tags, in the file's order."""
    return _unique([tag_part(c.get("text", "")) for c in doc.get("claims", [])])


def property_tags(doc: dict[str, Any]) -> list[str]:
    """The ``<name>`` component of each property's tags, in the file's order."""
    props = doc.get("properties", []) or []
    return _unique([tag_part(p.get("name") or p.get("text", "")) for p in props])


def _put(scalars: dict[str, float], tag: str, value: Any) -> None:
    if isinstance(value, bool):
        value = float(value)
    if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
        scalars[tag] = float(value)


def config(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's description: hypothesis, model (with its weights' SHA-256), task (seed),
    settings and provenance (seed, package versions, start time), from results.json."""
    hyp, model, task = doc.get("hypothesis", {}), doc.get("model", {}), doc.get("task", {})
    prov = doc.get("provenance", {}) or {}
    settings = doc.get("settings", {}) or {}
    return {
        "schema": doc.get("schema"),
        "hypothesis": {k: hyp.get(k) for k in ("name", "file", "description")},
        "model": {k: model.get(k) for k in ("ref", "weights_sha256", "n_layers", "n_heads")},
        "task": {k: task.get(k) for k in ("name", "n", "seed", "generator", "file")},
        "settings": {
            k: settings.get(k)
            for k in ("metric", "ablation", "confidence", "correction", "bootstrap_seed")
        },
        "provenance": {
            "seed": prov.get("seed"),
            "causal_mi_version": (prov.get("versions") or {}).get("causal-mi"),
            "versions": prov.get("versions"),
            "python": prov.get("python"),
            "started": prov.get("started"),
        },
    }


def provenance_text(doc: dict[str, Any], source: str) -> str:
    """Provenance as a Markdown table (TensorBoard's text plugin renders it)."""
    c = config(doc)
    rows = [
        ("results", source),
        ("hypothesis", f"{c['hypothesis']['name']} ({c['hypothesis']['file']})"),
        ("model", c["model"]["ref"]),
        ("weights sha256", c["model"]["weights_sha256"]),
        ("task", f"{c['task']['name']} n = {c['task']['n']}"),
        ("seed", c["provenance"]["seed"]),
        ("causal-mi", c["provenance"]["causal_mi_version"]),
        ("started", c["provenance"]["started"]),
    ]
    rows += [(f"version {k}", v) for k, v in (c["provenance"]["versions"] or {}).items()]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | `{v}` |" for k, v in rows)


def from_results(doc: dict[str, Any], *, step: int, source: str = "") -> Step:
    """The step one results document becomes (see the module docstring for the tags)."""
    scalars: dict[str, float] = {}
    texts: dict[str, str] = {}
    claims = doc.get("claims", []) or []
    for tag, c in zip(claim_tags(doc), claims, strict=True):
        base = f"claims/{tag}"
        _put(scalars, f"{base}/estimate", c.get("point"))
        _put(scalars, f"{base}/lower", c.get("lower"))
        _put(scalars, f"{base}/upper", c.get("upper"))
        _put(scalars, f"{base}/threshold", c.get("threshold"))
        if c.get("op") == "~=":
            _put(scalars, f"{base}/tolerance", c.get("tolerance"))
        status = c.get("status") or ("holds" if c.get("passed") else "fails")  # schema v1
        _put(scalars, f"{base}/verdict", CLAIM_CODES.get(status))
        texts[f"{base}/status"] = status + (f": {c['why']}" if c.get("why") else "")
    base = doc.get("baseline", {}) or {}
    interval = base.get("G_interval") or [None, None]
    _put(scalars, "gap/G", base.get("G"))
    _put(scalars, "gap/lower", interval[0])
    _put(scalars, "gap/upper", interval[1])
    _put(scalars, "gap/decidable", (base.get("gap_gate") or {}).get("decidable"))
    _put(scalars, "gap/clean_mean", base.get("clean_mean"))
    _put(scalars, "gap/corrupt_mean", base.get("corrupt_mean"))
    props = doc.get("properties", []) or []
    for tag, p in zip(property_tags(doc), props, strict=True):
        _put(scalars, f"properties/{tag}/status", PROPERTY_CODES.get(p.get("status")))
        texts[f"properties/{tag}/detail"] = f"{p.get('status')}: {p.get('detail', '')}"
    verdict = doc.get("verdict") or ("pass" if doc.get("passed") else "fail")
    claims_verdict = verdict  # the file's verdict counts properties too (schema v2)
    if "claims_passed" in doc and verdict != "not decidable":
        claims_verdict = "pass" if doc["claims_passed"] else "fail"
    _put(scalars, "verdict/claims", FILE_CODES.get(claims_verdict))
    ok = verdict == "pass" and not any(p.get("status") in FAILING_PROPERTIES for p in props)
    _put(scalars, "verdict/passed", ok)
    _put(scalars, "verdict/claims_hold", sum(c.get("status") == "holds" for c in claims))
    _put(scalars, "verdict/claims_total", len(claims))
    reason = doc.get("verdict_reason") or ""
    texts["verdict/status"] = verdict + (f": {reason}" if reason else "")
    texts["provenance"] = provenance_text(doc, source)
    clash = scalars.keys() & texts.keys()  # W&B keeps one value per key
    if clash:
        raise ValueError(f"tags used for a number and a text: {sorted(clash)}")
    return Step(step, source, scalars, texts, config(doc))


def load_steps(paths: list[Path], steps: list[int] | None = None) -> list[Step]:
    """Read each results.json (or its folder) as one step: ``steps`` (one per file) or
    0, 1, 2, ... Raises :class:`~causal_mi.errors.InputError` naming a bad file, and
    :class:`~causal_mi.errors.OptionError` when the steps do not match the files."""
    from causal_mi.errors import InputError, OptionError
    from causal_mi.report.results_json import read

    if steps and len(steps) != len(paths):
        raise OptionError(
            f"--step was given {len(steps)} time(s) for {len(paths)} results file(s); give "
            "it once per file (in the same order) or not at all (steps 0, 1, 2, ...)"
        )
    numbers = list(steps) if steps else list(range(len(paths)))
    repeated = sorted({s for s in numbers if numbers.count(s) > 1})
    if repeated:
        raise OptionError(
            f"--step {', '.join(map(str, repeated))} is given to several results files; each "
            "file is one step of the run, so give each its own step"
        )
    docs, problems = [], []
    for p in paths:  # every bad file reported at once
        try:
            docs.append(read(p))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    files = [p / "results.json" if p.is_dir() else p for p in map(Path, paths)]
    return [
        from_results(d, step=s, source=str(f)) for d, s, f in zip(docs, numbers, files, strict=True)
    ]
