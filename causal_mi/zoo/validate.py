"""``causal-mi zoo validate``: every zoo hypothesis must get its expected verdict.

Files named ``true*.yaml`` must verify; every other file (``false-*.yaml``) must fail. This is
the project's own evidence that its verdicts are right (SPEC 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    model: str
    file: str
    expected: str
    got: str
    numbers: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def expected_verdict(path: Path) -> str:
    return "pass" if path.stem.startswith("true") else "fail"


def validate(root: Path, *, max_rows: int = 256, seeds: list[int] | None = None) -> list[Row]:
    """Verify every ``<root>/<model>/*.yaml``; a file that cannot load counts as 'error'.

    With ``seeds`` each file is verified once per task seed and must get the same verdict on
    all of them ('mixed' otherwise, which never matches)."""
    from causal_mi import pipeline
    from causal_mi.errors import CausalMIError

    rows = []
    for path in sorted(root.glob("*/*.yaml")):
        model = path.parent.name
        try:
            runs = [
                pipeline.evaluate(
                    pipeline.prepare(path, seed=s), max_rows=max_rows, dowhy=False
                )  # verdicts only
                for s in (seeds or [None])
            ]
        except CausalMIError as exc:
            last = str(exc).splitlines()[-1].strip()
            rows.append(Row(model, path.name, expected_verdict(path), "error", last))
            continue
        ctx = runs[0]
        if len({pipeline.passed(c) for c in runs}) > 1:
            got = "mixed"
        else:
            got = "pass" if pipeline.passed(ctx) else "fail"
        nums = "; ".join(
            [
                f"{c.estimate.label} {c.estimate.point:+.2f} "
                f"[{c.estimate.lower:+.2f}, {c.estimate.upper:+.2f}]"
                f"{'' if c.passed else ' x'}"
                for c in ctx.verdict.claims
            ]
            + [
                f"property {p['name']} {p['status']}{' x' if p['status'] == 'fails' else ''}"
                for p in ctx.properties
            ]
        )
        rows.append(Row(model, path.name, expected_verdict(path), got, nums))
    return rows


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| model | file | expected | got | key numbers (x = claim failed) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.model} | {r.file} | {r.expected} | {r.got}{'' if r.ok else ' **MISMATCH**'} "
        f"| {r.numbers} |"
        for r in rows
    ]
    ok = sum(r.ok for r in rows)
    lines.append(f"\n{ok}/{len(rows)} verdicts as expected.")
    return "\n".join(lines)
