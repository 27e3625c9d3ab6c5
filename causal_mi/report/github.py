"""GitHub Actions workflow commands (``::error file=F,line=L,col=C,title=T::message``), so a
failing claim shows up on the line of the hypothesis file that states it.

Escaping follows the runner's rules: in messages ``%``, CR and LF; in properties also ``:``
and ``,``.
"""

from __future__ import annotations

from causal_mi.report.context import ReportContext


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def split_location(location: str) -> tuple[str, int, int]:
    """``"path:line:col"`` -> (path, line, col); a bare path gives line and col 0."""
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return location, 0, 0


def annotation(level: str, message: str, *, location: str = "", title: str = "") -> str:
    """One workflow command; ``level`` is ``error``, ``warning`` or ``notice``."""
    props = []
    if location:
        file, line, col = split_location(location)
        props.append(f"file={_prop(file)}")
        if line:
            props += [f"line={line}", f"col={col or 1}"]
    if title:
        props.append(f"title={_prop(title)}")
    head = f"::{level} " + ",".join(props) if props else f"::{level}"
    return f"{head}::{_data(message)}"


def verify_annotations(ctx: ReportContext) -> list[str]:
    """An error per failing claim and property (at the line that states it), a notice with
    the file's summary."""
    from causal_mi.properties.result import FAILING
    from causal_mi.report.statistics import claims_count, estimate_cell

    v = ctx.verdict
    out = []
    for c in v.claims:
        if not c.passed:
            out.append(
                annotation(
                    "error",
                    f"claim {c.status}: {c.claim.claim.text}: {estimate_cell(c)}; "
                    f"{c.why or c.rule}",
                    location=str(c.claim.location),
                    title=f"causal-mi claim {c.status}",
                )
            )
    for p in ctx.properties:
        if p.status in FAILING:
            out.append(
                annotation(
                    "error",
                    f"property {p.status}: {p.text}: {p.detail}",
                    location=str(v.hypothesis.path),
                    title=f"causal-mi property {p.status}",
                )
            )
    out.append(
        annotation(
            "notice",
            f"{v.hypothesis.spec.name}: {claims_count(v)}",
            location=str(v.hypothesis.path),
            title="causal-mi",
        )
    )
    return out
