"""``junit.xml``: one test case per claim and property, for CI dashboards."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from causal_mi.report.context import ReportContext


def suite(ctx: ReportContext) -> ET.Element:
    v = ctx.verdict
    name = v.hypothesis.spec.name
    claims = list(v.claims)
    failures = sum(not c.passed for c in claims)
    skipped = sum(p.status == "not checked" for p in ctx.properties)
    failures += sum(p.status in ("fails", "vacuous") for p in ctx.properties)
    props = ET.Element("properties")
    ET.SubElement(props, "property", name="verdict", value=v.status)
    ET.SubElement(props, "property", name="levels", value=v.levels)
    if not v.valid:
        ET.SubElement(props, "property", name="not_decidable", value=v.gap.reason)
    el = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(claims) + len(ctx.properties)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=str(ctx.provenance.get("seconds", 0)),
    )
    el.append(props)
    for c in claims:
        case = ET.SubElement(
            el,
            "testcase",
            classname=name,
            name=c.claim.claim.text,
            file=str(v.hypothesis.path),
            line=str(c.claim.location.line),
        )
        if not c.passed:
            msg = c.why or c.rule
            kind = "not decidable" if not c.decidable else c.status
            ET.SubElement(case, "failure", message=msg, type=kind).text = (
                f"estimate {c.estimate.point:.4f}, CI [{c.estimate.lower:.4f}, "
                f"{c.estimate.upper:.4f}]; {msg}"
            )
    for p in ctx.properties:
        case = ET.SubElement(el, "testcase", classname=name, name=f"property: {p.text}")
        if p.status == "not checked":
            ET.SubElement(case, "skipped", message=p.detail)
        elif p.status in ("fails", "vacuous"):
            ET.SubElement(case, "failure", message=p.detail, type=p.status)
    return el


def write(contexts: list[ReportContext], path: Path) -> None:
    root = ET.Element("testsuites")
    for ctx in contexts:
        root.append(suite(ctx))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
