"""Every YAML block in README.md and docs/*.md is a valid file of its kind: a hypothesis file
loads (schema, names, edge order), a fragment of one (variables, properties) loads when
added to the README's example, a workflow and a pre-commit config have their keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    """(line of the opening fence, text) of each fenced ```yaml block."""
    text = path.read_text()
    return [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, re.S | re.M)
    ]


BLOCKS = [(p, line, body) for p in DOCS for line, body in yaml_blocks(p)]


def test_the_docs_have_yaml_blocks():
    assert len(BLOCKS) >= 4


def test_the_extractor_catches_invalid_yaml(tmp_path):
    """The README's old snippet (an unquoted [ in a flow mapping) is not YAML."""
    page = tmp_path / "x.md"
    page.write_text("text\n```yaml\non: {activation: L0.mlp[12], levels: [0.1]}\n```\n")
    [(line, body)] = yaml_blocks(page)
    assert line == 2
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(body)


def _example() -> str:
    """The README's complete hypothesis file (the first block with ``version``)."""
    return next(b for p, _, b in BLOCKS if p.name == "README.md" and "version:" in b)


@pytest.mark.parametrize(
    ("path", "line", "body"), BLOCKS, ids=[f"{p.name}:{n}" for p, n, _ in BLOCKS]
)
def test_yaml_block_is_valid(path, line, body, tmp_path):
    from causal_mi.spec.loader import load_hypothesis

    data = yaml.safe_load(body)
    assert isinstance(data, dict), f"{path.name}:{line}: not a mapping"
    if "jobs" in data:  # a GitHub Actions workflow ("on" reads as True in YAML 1.1)
        assert ("on" in data or True in data) and all("steps" in j for j in data["jobs"].values())
        return
    if "repos" in data:  # a pre-commit config
        hooks = [h for r in data["repos"] for h in r["hooks"]]
        assert hooks and all({"id", "entry", "language"} <= set(h) for h in hooks)
        return
    text = body if "version" in data else _example() + body
    f = tmp_path / "block.yaml"
    f.write_text(text)
    load_hypothesis(f)  # raises InputError naming file:line:col on any problem
