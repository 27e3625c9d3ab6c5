"""A task file split into a calibration part and a verification part: disjoint, covering,
deterministic, and the task seed samples within one part only."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from causal_mi.cli import app
from causal_mi.spec.schema import SplitSpec
from causal_mi.tasks.registry import split_part

ZOO = Path(__file__).parents[2] / "hypotheses" / "zoo" / "occupation-bias"


def test_parts_are_disjoint_cover_the_file_and_are_deterministic():
    rows = list(range(101))
    cal = split_part(rows, SplitSpec(calibrate=0.3, part="calibrate"))
    ver = split_part(rows, SplitSpec(calibrate=0.3))  # the verification part by default
    assert len(cal) == 30 and not set(cal) & set(ver) and sorted(cal + ver) == rows
    assert cal == split_part(rows, SplitSpec(calibrate=0.3, part="calibrate"))
    assert cal != split_part(rows, SplitSpec(calibrate=0.3, part="calibrate", seed=1))
    assert cal == sorted(cal)  # file order within a part


def _file(tmp: Path, split: str, seed: int) -> Path:
    (tmp / "pairs.jsonl").write_text((ZOO / "pairs.jsonl").read_text())
    path = tmp / f"h-{split.replace(' ', '')}-{seed}.yaml"
    path.write_text(
        "version: 1\nname: split\nmodel: zoo:occupation-bias\n"
        f"task: {{file: pairs.jsonl, n: 50, seed: {seed}, split: {split}}}\n"
        "claims: ['effect(L0H1) >= 0.1']\n"
    )
    return path


def _sources(path: Path, out: Path) -> set[str]:
    r = CliRunner().invoke(
        app, ["run", str(path), "-o", str(out), "--no-dowhy", "--no-ablation-check"]
    )
    assert r.exit_code == 0, r.output
    return set(json.loads((out / "results.json").read_text())["task"]["examples"])


def test_seeds_sample_within_one_part(tmp_path):
    ver = {s: _sources(_file(tmp_path, "{calibrate: 0.5}", s), tmp_path / f"v{s}") for s in (1, 2)}
    cal = _sources(_file(tmp_path, "{calibrate: 0.5, part: calibrate}", 1), tmp_path / "c")
    assert ver[1] != ver[2]  # another seed, another sample ...
    assert not (ver[1] | ver[2]) & cal  # ... never from the other part


def test_split_on_a_generator_is_an_input_error(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        "version: 1\nname: g\nmodel: zoo:induction-2l\n"
        "task: {generator: repeated_tokens, split: {calibrate: 0.5}}\n"
        "claims: ['effect(L0H1) >= 0.1']\n"
    )
    r = CliRunner().invoke(app, ["verify", str(path), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and f"{path}:4:" in r.output and "applies to task files" in r.output
