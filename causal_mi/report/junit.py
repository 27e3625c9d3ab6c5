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
    skipped = sum(p["status"] == "not checked" for p in ctx.properties)
    failures += sum(p["status"] == "fails" for p in ctx.properties)
    el = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(claims) + len(ctx.properties)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=str(ctx.provenance.get("seconds", 0)),
    )
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
            msg = c.rule if v.valid else "G <= 0: no fraction of G is defined"
            ET.SubElement(case, "failure", message=msg).text = (
                f"estimate {c.estimate.point:.4f}, CI [{c.estimate.lower:.4f}, "
                f"{c.estimate.upper:.4f}]; {msg}"
            )
    for p in ctx.properties:
        case = ET.SubElement(el, "testcase", classname=name, name=f"property: {p['text']}")
        if p["status"] == "not checked":
            ET.SubElement(case, "skipped", message=p["detail"])
        elif p["status"] == "fails":
            ET.SubElement(case, "failure", message=p["detail"])
    return el


def write(contexts: list[ReportContext], path: Path) -> None:
    root = ET.Element("testsuites")
    for ctx in contexts:
        root.append(suite(ctx))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
