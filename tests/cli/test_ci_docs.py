"""The CI recipes in docs/ci.md run as written: the workflow's steps (all but ``uses:`` steps
and the install) with bash -e, as the GitHub runner runs them, in a checkout of this
repository; the pre-commit hook's entry on a hypothesis file."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_docs import yaml_blocks

ROOT = Path(__file__).resolve().parents[2]


def _recipes() -> tuple[dict, dict]:
    blocks = [yaml.safe_load(b) for _, b in yaml_blocks(ROOT / "docs" / "ci.md")]
    workflow = next(b for b in blocks if "jobs" in b)
    precommit = next(b for b in blocks if "repos" in b)
    return workflow, precommit


def _checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working copy with the hypotheses, and a ``causal-mi`` on PATH that runs this
    checkout's package (the installed one may be another version)."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "hypotheses", work / "hypotheses")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "causal-mi"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m causal_mi.cli "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    return work, env


def _steps(workflow: dict) -> tuple[dict, list[dict]]:
    [job] = workflow["jobs"].values()
    return job.get("env", {}), [
        s for s in job["steps"] if "run" in s and s.get("name") != "install"
    ]


@pytest.mark.slow  # fresh processes: about a minute on 2 cores
def test_workflow_commands_run_as_written(tmp_path):
    workflow, _ = _recipes()
    job_env, steps = _steps(workflow)
    assert [s["name"] for s in steps] == ["verify the claims", "compare with the baseline"]
    work, env = _checkout(tmp_path)
    env.update({k: str(v) for k, v in job_env.items()})

    def run(step):
        return subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=work, env=env, capture_output=True, text=True
        )

    verify, compare = (run(s) for s in steps)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "::notice file=" in verify.stdout and "claims hold" in verify.stdout
    assert (work / "reports/ci/results.json").is_file() and (
        work / "reports/ci/report.html"
    ).is_file()
    assert compare.returncode == 0 and "no baseline at" in compare.stdout
    # with the baseline committed, the comparison step runs diff: same file, no difference
    baseline = work / job_env["BASELINE"]
    baseline.parent.mkdir(parents=True)
    shutil.copy(work / "reports/ci/results.json", baseline)
    again = run(steps[1])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "::notice::causal-mi diff: 0 difference(s)" in again.stdout


@pytest.mark.slow
def test_precommit_entry_verifies_the_changed_files(tmp_path):
    _, precommit = _recipes()
    [hook] = [h for r in precommit["repos"] for h in r["hooks"]]
    work, env = _checkout(tmp_path)
    changed = "hypotheses/zoo/handmade-induction/true.yaml"
    import re

    assert re.search(hook["files"], changed)
    r = subprocess.run(
        [*shlex.split(hook["entry"]), changed], cwd=work, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "reports/pre-commit/results.json").is_file()
