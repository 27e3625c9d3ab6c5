"""Bad input: every mistake in a hypothesis, task or model reference exits 2 and teaches.

Each case checks what SPEC 2 and 6 promise for a file that cannot be loaded: exit code 2,
``<file>:<line>:`` pointing at the offending key or item, a message that states the rule and
the valid options (or the nearest match), no traceback, and no output files.

The model-free cases also run through :func:`load_hypothesis` directly (fast, no model).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app
from causal_mi.errors import InputError
from causal_mi.spec.loader import load_hypothesis

# One line per key, so a single-line value sits on the line given by its position here:
# version 1, name 2, model 3, task 4, metric 5, ablation 6, nodes 7, edges 8, claims 9.
BASE: dict[str, str] = {
    "version": "1",
    "name": "t",
    "model": "path:MODEL",
    "task": "{generator: repeated_tokens, n: 20, seed: 0}",
    "metric": "logit_diff",
    "ablation": "resample",
    "nodes": "{prev: L0H1, ind: L1H3}",
    "edges": '["prev -> ind.k", "ind -> logits"]',
    "claims": '["effect(ind) >= -100"]',
}
OUTPUT_FILES = ("report.md", "results.json", "junit.xml", "report.html")


def hypothesis_text(model_ref: str | Path, /, **parts: str | None) -> str:
    """The baseline file with ``parts`` replaced (None drops a key, new keys go last).

    A value starting with a newline is written as a block under its key.
    """
    merged: dict[str, str | None] = {**BASE, **parts}
    lines = []
    for key, value in merged.items():
        if value is None:
            continue
        value = value.replace("MODEL", str(model_ref))
        lines.append(f"{key}:{value}" if value.startswith("\n") else f"{key}: {value}")
    return "\n".join(lines) + "\n"


def write(
    directory: Path, model_ref: str | Path, /, file_name: str = "hyp.yaml", **parts: str | None
) -> Path:
    """Write the baseline file with ``parts`` replaced (keys as in :func:`hypothesis_text`)."""
    path = directory / file_name
    path.write_text(hypothesis_text(model_ref, **parts), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """1-based number of the one line of ``path`` that contains ``needle``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def verify_bad(path: Path | list[Path], tmp_path: Path) -> str:
    """Run ``causal-mi verify``; check exit 2, no traceback, no outputs; return the output."""
    out = tmp_path / "out"
    files = path if isinstance(path, list) else [path]
    result = CliRunner().invoke(app, ["verify", *map(str, files), "--out", str(out)])
    text = result.output
    assert result.exit_code == 2, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert "Traceback" not in text
    assert "nothing was measured" in text
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    written = [p for name in OUTPUT_FILES for p in tmp_path.rglob(name)]
    assert not written, written
    return text


def assert_at(text: str, file: Path, line: int, *fragments: str) -> None:
    """``text`` reports a problem at ``file:line:`` whose message holds every fragment."""
    prefix = f"{file}:{line}:"
    msgs = [ln for ln in text.splitlines() if prefix in ln]
    assert msgs, f"nothing reported at {prefix}\n{text}"
    for fragment in fragments:
        assert any(fragment in m for m in msgs), f"{fragment!r} not at {prefix}\n{text}"


def error_lines(text: str, file: Path) -> list[int]:
    return [int(n) for n in re.findall(re.escape(str(file)) + r":(\d+):\d+:", text)]


@pytest.fixture
def model(attn_only_dir: Path) -> Path:
    return attn_only_dir


# --- hypothesis file: syntax and schema ---------------------------------------------------


def test_bad_yaml_syntax(tmp_path, model):
    path = write(tmp_path, model, nodes="{prev: L0H1, ind: [L1H3}")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, 7, "invalid YAML", "expected ',' or ']'", "check indentation")


def test_unknown_top_level_key(tmp_path, model):
    path = write(tmp_path, model, metric=None, metirc="logit_diff")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, line_of(path, "metirc"), "unknown key 'metirc'", "did you mean metric?")


def test_unknown_key_in_task(tmp_path, model):
    path = write(tmp_path, model, task="\n  generator: repeated_tokens\n  n: 20\n  sed: 0")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, "sed: 0"),
        "unknown key 'sed' at task",
        "did you mean seed?",
        "valid: file, generator, n, noise, params, read_at, seed",
    )


def test_unknown_metric_lists_the_valid_ones(tmp_path, model):
    path = write(tmp_path, model, metric="accuracy")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, 5, "unknown metric 'accuracy'", "valid: kl, logit_diff, logprob, prob")


def test_unsupported_version(tmp_path, model):
    path = write(tmp_path, model, version="2")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, 1, "unsupported version 2", "reads version: 1")


def test_unknown_generator(tmp_path, model):
    path = write(tmp_path, model, task="{generator: repeated_tokenz, n: 20}")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        4,
        "unknown task generator 'repeated_tokenz'",
        "did you mean repeated_tokens?",
        "file: pairs.jsonl",
    )


# --- sites and graph ------------------------------------------------------------------------

NODES_BLOCK = "\n  prev: L0H1\n  ind: {site}"


def test_unknown_site_is_reported_once(tmp_path, model):
    path = write(tmp_path, model, nodes=NODES_BLOCK.format(site="L1X3"))
    text = verify_bad(path, tmp_path)
    assert_at(
        text, path, line_of(path, "L1X3"), "unknown site 'L1X3' for node 'ind'", "L<l>H<h>.q|k|v"
    )
    # Edges and claims that use 'ind' are not reported again as unknown names.
    assert "1 error:" in text
    assert "unknown node or site" not in text


@pytest.mark.parametrize(
    ("site", "fragments"),
    [
        ("L5H3", ("L5H3: layer 5 is out of range", "the model has layers 0..1")),
        ("L1H9", ("L1H9: head 9 is out of range", "layer 1 has heads 0..3")),
    ],
    ids=["layer", "head"],
)
def test_site_out_of_range(tmp_path, model, site, fragments):
    path = write(tmp_path, model, nodes=NODES_BLOCK.format(site=site))
    text = verify_bad(path, tmp_path)
    assert_at(text, path, line_of(path, site), *fragments)
    assert "1 error:" in text  # at the node, not again at 'ind.k' in the edges


@pytest.mark.parametrize(
    ("site", "fragments"),
    [
        ("L9H0.pattern", ("L9H0.pattern: layer 9 is out of range", "the model has layers 0..1")),
        ("L1H9.pattern", ("L1H9.pattern: head 9 is out of range", "layer 1 has heads 0..3")),
    ],
    ids=["layer", "head"],
)
def test_pattern_site_out_of_range(tmp_path, model, site, fragments):
    path = write(
        tmp_path,
        model,
        nodes=f"\n  prev: L0H1\n  ind: L1H3\n  pat: {site}",
        claims='["effect(pat) >= -100"]',
    )
    text = verify_bad(path, tmp_path)
    assert_at(text, path, line_of(path, site), *fragments)
    assert "1 error:" in text


def test_mlp_site_on_attention_only_model(tmp_path, model):
    path = write(tmp_path, model, nodes=NODES_BLOCK.format(site="L1H3") + "\n  mlp: L0.mlp")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, "L0.mlp"),
        "L0.mlp: this model is attention-only and has no MLPs",
        "valid sites: embed, logits, L<l>H<h>",
    )


def test_position_outside_the_prompts(tmp_path, model):
    # repeated_tokens with seq_len 8, repeat 4 and BOS: every prompt is 13 tokens.
    path = write(tmp_path, model, nodes="\n  prev: L0H1\n  ind: {at: L1H3, pos: 13}")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, "pos: 13"),
        "position 13 is outside the shortest prompt (13 tokens",
        "positions 0..12 or -13..-1",
    )


@pytest.mark.parametrize(
    ("edge", "fragments"),
    [
        ("L1H3 -> L0H1.k", ("goes backwards", "a sender must come from an earlier layer")),
        ("L1H0 -> L1H3.k", ("stays inside layer 1", "heads of one layer run in parallel")),
        ("ind -> ind.k", ("feeds L1H3 into its own input", "cannot cause itself")),
    ],
    ids=["backwards", "same-layer", "self-loop"],
)
def test_edge_against_computation_order(tmp_path, model, edge, fragments):
    path = write(tmp_path, model, edges=f"\n  - embed -> prev\n  - {edge}\n  - ind -> logits")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, line_of(path, edge), *fragments)


def test_cycle_is_reported_at_the_closing_edge(tmp_path, model):
    path = write(tmp_path, model, edges="\n  - prev -> ind.k\n  - ind -> prev.q\n  - ind -> logits")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, "ind -> prev.q"),
        "closes a cycle: L0H1 -> L1H3 -> L0H1",
        "must be acyclic",
    )
    assert "1 error:" in text


# --- claims ---------------------------------------------------------------------------------

CLAIMS_BLOCK = "\n  - effect(prev) >= -100\n  - {claim}"


@pytest.mark.parametrize(
    ("claim", "fragments"),
    [
        ("effect(ind) > 0.5", ("comparison '>'", "use one of: >=, <=", "one-sided")),
        (
            "effect ind >= 3",
            ("malformed claim 'effect ind >= 3'", "QUANTITY >= NUMBER", "effect(ind) >= 0.5"),
        ),
        ("efect(ind) >= 0.5", ("unknown quantity 'efect'", "did you mean effect?", "faithfulness")),
        ("effect(indd) >= 0.5", ("unknown node or site 'indd'", "did you mean ind?")),
    ],
    ids=["strict-inequality", "no-parentheses", "unknown-quantity", "unknown-node"],
)
def test_bad_claim(tmp_path, model, claim, fragments):
    path = write(tmp_path, model, claims=CLAIMS_BLOCK.format(claim=claim))
    text = verify_bad(path, tmp_path)
    assert_at(text, path, line_of(path, claim), *fragments)


# --- model references -----------------------------------------------------------------------


def test_unknown_zoo_model(tmp_path, model):
    from causal_mi.models.loading import zoo_names

    path = write(tmp_path, model, model="zoo:nonexistent")
    text = verify_bad(path, tmp_path)
    assert_at(text, path, 3, "unknown zoo model 'nonexistent'")
    names = zoo_names()
    for name in names[:8]:
        assert name in text
    assert ("valid: " in text) if names else ("none to choose from" in text)


def test_missing_model_directory_resolves_against_the_file(tmp_path, model):
    path = write(tmp_path, model, model="path:no-such-model")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        3,
        f"model directory not found: {tmp_path / 'no-such-model'}",
        "resolved against the hypothesis file's directory",
        "config.json",
    )


# --- task files -----------------------------------------------------------------------------


def pair(clean: str, corrupt: str, answer: str = " w1", wrong: str = " w2") -> str:
    return (
        f'{{"clean": "{clean}", "corrupt": "{corrupt}", "answer": "{answer}", "wrong": "{wrong}"}}'
    )


def file_task(tmp_path: Path, model: Path, lines: list[str]) -> tuple[Path, Path]:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    path = write(tmp_path, model, task="\n  file: pairs.jsonl\n  n: 10")
    return path, data


def test_empty_task_file(tmp_path, model):
    path, data = file_task(tmp_path, model, [])
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, "file: pairs.jsonl"),
        f"task file {data} has no examples",
        '{"clean": "...", "corrupt": "...", "answer": " X", "wrong": " Y"}',
    )


def test_missing_task_file(tmp_path, model):
    path = write(tmp_path, model, task="{file: nowhere.jsonl}")
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        4,
        f"task file not found: {tmp_path / 'nowhere.jsonl'}",
        "resolved against the hypothesis file's directory",
    )


def test_answer_must_be_a_single_token(tmp_path, model):
    path, data = file_task(
        tmp_path, model, [pair("w1 w2 w3", "w4 w5 w6"), pair("w1 w2 w3", "w4 w5 w6", " w1 w2")]
    )
    text = verify_bad(path, tmp_path)
    assert_at(text, data, 2, "answer ' w1 w2' is 2 tokens ('w1', 'w2')", "must be a single token")
    assert "1 error:" in text


def test_clean_and_corrupt_lengths_differ(tmp_path, model):
    path, data = file_task(tmp_path, model, [pair("w1 w2 w3", "w4 w5 w6"), "", pair("w1 w2", "w3")])
    text = verify_bad(path, tmp_path)
    assert_at(
        text, data, 3, "clean prompt is 3 tokens but corrupt is 2", "must have the same length"
    )


NOISE_TASK = "\n  generator: repeated_tokens\n  n: 20\n  noise:\n    positions: {positions}"


@pytest.mark.parametrize(
    ("positions", "needle", "bad"),
    [("[1, 2, 13]", "13]", "13"), ("-14", "positions: -14", "-14")],
    ids=["list", "single"],
)
def test_noise_position_outside_the_prompts(tmp_path, model, positions, needle, bad):
    # repeated_tokens with seq_len 8, repeat 4 and BOS: every prompt is 13 tokens.
    path = write(tmp_path, model, task=NOISE_TASK.format(positions=positions))
    text = verify_bad(path, tmp_path)
    assert_at(
        text,
        path,
        line_of(path, needle),
        f"task.noise.positions: position {bad} is outside the shortest prompt (13 tokens",
        "positions 0..12 or -13..-1",
    )
    assert "1 error:" in text


def test_noise_file_task_needs_no_corrupt_prompts(tmp_path, model):
    """With noise the corrupt prompts are ignored: lines without them (or of another length)
    load, and a position outside the prompts is still reported."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"clean": "w1 w2 w3", "answer": " w4", "wrong": " w5"}\n'
        '{"clean": "w1 w2 w3", "corrupt": "w9", "answer": " w4", "wrong": " w5"}\n'
    )
    task = "\n  file: pairs.jsonl\n  noise:\n    positions: [1, 4]"
    text = verify_bad(write(tmp_path, model, task=task), tmp_path)
    path = tmp_path / "hyp.yaml"
    assert_at(text, path, line_of(path, "positions"), "position 4 is outside the shortest prompt")
    assert "1 error:" in text  # neither the missing nor the shorter corrupt prompt


# --- several problems -----------------------------------------------------------------------


def test_every_error_is_reported_at_once(tmp_path, model):
    # A schema error (unknown key) must not hide the name and claim errors behind it.
    path = write(
        tmp_path,
        model,
        metric=None,
        metirc="logit_diff",
        nodes=NODES_BLOCK.format(site="L1X3"),
        claims=CLAIMS_BLOCK.format(claim="effect ind >= 3"),
    )
    text = verify_bad(path, tmp_path)
    expected = [line_of(path, "metirc"), line_of(path, "L1X3"), line_of(path, "effect ind")]
    assert len(set(expected)) == 3
    assert error_lines(text, path) == sorted(expected)  # each once, in file order
    assert_at(text, path, expected[0], "did you mean metric?")
    assert_at(text, path, expected[1], "unknown site 'L1X3'")
    assert_at(text, path, expected[2], "malformed claim")


def test_several_errors_are_counted(tmp_path, model):
    path = write(
        tmp_path,
        model,
        version="2",
        metric="accuracy",
        edges='["L1H3 -> L0H1.k"]',
    )
    text = verify_bad(path, tmp_path)
    assert "3 errors:" in text
    assert error_lines(text, path) == [1, 5, 8]


def test_one_bad_file_stops_every_file(tmp_path, model):
    good = write(tmp_path, model, file_name="good.yaml")
    bad = write(tmp_path, model, file_name="bad.yaml", metric="accuracy")
    text = verify_bad([good, bad], tmp_path)
    assert_at(text, bad, 5, "unknown metric 'accuracy'")
    assert str(good) not in text


# --- the loader alone (no model): fast checks of location and message ---------------------

NO_MODEL = "path:/nonexistent-model"

LOADER_CASES: dict[str, tuple[dict[str, str | None], list[tuple[str, str]]]] = {
    # id: (overrides, [(needle on the offending line, message fragment), ...])
    "yaml-syntax": ({"nodes": "{prev: L0H1, ind: [L1H3}"}, [("nodes:", "invalid YAML")]),
    "unknown-top-level-key": (
        {"metric": None, "metirc": "logit_diff"},
        [("metirc", "did you mean metric?")],
    ),
    "unknown-task-key": (
        {"task": "\n  generator: repeated_tokens\n  sed: 0"},
        [("sed: 0", "did you mean seed?")],
    ),
    "unknown-node-key": (
        {"nodes": "\n  prev: L0H1\n  ind:\n    at: L1H3\n    pso: -1"},
        [("pso", "unknown key 'pso' at nodes.ind; did you mean pos?")],
    ),
    "node-bad-pos": (
        {"nodes": "\n  prev: L0H1\n  ind: {at: L1H3, pos: 1.5}"},
        [("pos: 1.5", "node 'ind': pos must be a position (an integer")],
    ),
    "nodes-not-a-mapping": (
        {"nodes": "[L0H1, L1H3]"},
        [("nodes:", "nodes must be a mapping of your names to sites")],
    ),
    "task-not-a-mapping": (
        {"task": "repeated_tokens"},
        [("task:", "task must be a mapping: {generator: repeated_tokens")],
    ),
    "node-not-a-site": (
        {"nodes": "\n  prev: L0H1\n  ind: 3"},
        [("ind: 3", "must be a site name (for example L1H3) or a mapping")],
    ),
    "unknown-site": (
        {"nodes": "\n  prev: L0H1\n  ind: L1X3"},
        [("L1X3", "unknown site 'L1X3' for node 'ind'; valid forms: embed, logits")],
    ),
    "backwards-edge": (
        {"edges": "\n  - L1H3 -> L0H1.k"},
        [("L1H3 -> L0H1.k", "goes backwards in the model's computation order")],
    ),
    "same-layer-edge": (
        {"edges": "\n  - prev -> ind.k\n  - L1H0 -> L1H3.k"},
        [("L1H0 -> L1H3.k", "stays inside layer 1")],
    ),
    "cycle": (
        {"edges": "\n  - prev -> ind.k\n  - ind -> prev.q"},
        [("ind -> prev.q", "closes a cycle: L0H1 -> L1H3 -> L0H1")],
    ),
    "malformed-edge": (
        {"edges": "\n  - prev ind.k"},
        [("prev ind.k", "malformed edge 'prev ind.k': write 'sender -> receiver'")],
    ),
    "edge-not-a-string": (
        {"edges": "\n  - prev -> ind.k\n  - ind: logits"},
        [("ind: logits", "each edge must be a string 'sender -> receiver'")],
    ),
    "claim-not-a-string": (
        {"claims": "\n  - 0.25\n  - effect(ind) >= 0.5"},
        [("0.25", "each claim must be a string 'QUANTITY >= NUMBER'")],
    ),
    "unknown-metric": (
        {"metric": "accuracy"},
        [("metric:", "unknown metric 'accuracy'; valid: kl, logit_diff, logprob, prob")],
    ),
    "unknown-ablation": (
        {"ablation": "shuffle"},
        [("ablation:", "unknown ablation 'shuffle'; valid: mean, resample, zero")],
    ),
    "strict-inequality-claim": (
        {"claims": "\n  - effect(ind) > 0.5"},
        [("effect(ind) > 0.5", "use one of: >=, <=")],
    ),
    "malformed-claim": (
        {"claims": "\n  - effect ind >= 3"},
        [("effect ind >= 3", "malformed claim 'effect ind >= 3': expected QUANTITY >= NUMBER")],
    ),
    "unknown-quantity": (
        {"claims": "\n  - efect(ind) >= 0.5"},
        [("efect", "unknown quantity 'efect'; did you mean effect?")],
    ),
    "claim-unknown-node": (
        {"claims": "\n  - effect(indd) >= 0.5"},
        [("indd", "unknown node or site 'indd'; did you mean ind?")],
    ),
    "unknown-generator": (
        {"task": "{generator: repeated_tokenz}"},
        [("task:", "did you mean repeated_tokens?")],
    ),
    "generator-and-file": (
        {"task": "{generator: repeated_tokens, file: pairs.jsonl}"},
        [("task:", "task needs exactly one of 'generator'")],
    ),
    "missing-task-file": (
        {"task": "{file: nowhere.jsonl}"},
        [("task:", "task file not found")],
    ),
    "pattern-edge-receiver": (
        {"edges": "\n  - prev -> ind.k\n  - prev -> L1H3.pattern"},
        [("L1H3.pattern", "L1H3.pattern) is not an edge receiver: the pattern is computed")],
    ),
    "pattern-edge-sender": (
        {"edges": "\n  - prev -> ind.k\n  - ind.pattern -> logits"},
        [("ind.pattern", "L1H3.pattern) is not an edge sender")],
    ),
    "pattern-unknown-suffix": (
        {"claims": "\n  - effect(ind.patern) >= 0.5"},
        [("ind.patern", "did you mean ind.pattern?")],
    ),
    "noise-scale": (
        {"task": "\n  generator: repeated_tokens\n  noise: {positions: [1], scale: 0}"},
        [("scale: 0", "task.noise.scale must be a number > 0")],
    ),
    "noise-unknown-key": (
        {"task": "\n  generator: repeated_tokens\n  noise: {positions: [1], sclae: 3}"},
        [("sclae", "unknown key 'sclae' at task.noise; did you mean scale?")],
    ),
    "noise-positions-type": (
        {"task": "\n  generator: repeated_tokens\n  noise: {positions: 1.5}"},
        [("1.5", "task.noise.positions must be a token position or a list of them")],
    ),
    "noise-positions-empty": (
        {"task": "\n  generator: repeated_tokens\n  noise: {positions: []}"},
        [("positions: []", "task.noise.positions must be a token position or a list")],
    ),
    "noise-missing-positions": (
        {"task": "\n  generator: repeated_tokens\n  noise: {scale: 3}"},
        [("noise:", "task.noise needs 'positions'")],
    ),
    "noise-not-a-mapping": (
        {"task": "\n  generator: repeated_tokens\n  noise: 3"},
        [("noise:", "task.noise must be a mapping like {positions: [1, 2, 3]")],
    ),
    "version-2": ({"version": "2"}, [("version:", "unsupported version 2")]),
    "missing-model-key": ({"model": None}, [("version:", "missing required key 'model'")]),
    "several": (
        {
            "version": "2",
            "metric": "accuracy",
            "nodes": "\n  prev: L0H1\n  ind: L1X3",
            "edges": "\n  - L1H3 -> L0H1.k",
            "claims": "\n  - efect(prev) >= 0.5",
        },
        [
            ("version:", "unsupported version 2"),
            ("metric:", "unknown metric 'accuracy'"),
            ("L1X3", "unknown site 'L1X3'"),
            ("L1H3 -> L0H1.k", "goes backwards"),
            ("efect", "did you mean effect?"),
        ],
    ),
}


@pytest.mark.parametrize(
    ("overrides", "expected"), list(LOADER_CASES.values()), ids=list(LOADER_CASES)
)
def test_loader_reports_each_problem_where_it_is(tmp_path, overrides, expected):
    path = write(tmp_path, NO_MODEL, **overrides)
    with pytest.raises(InputError) as info:
        load_hypothesis(path)
    problems = info.value.problems
    got = [(p.location.file, p.location.line) for p in problems]
    want = [(str(path), line_of(path, needle)) for needle, _ in expected]
    assert got == want, info.value.render()
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message
        assert problem.location.col >= 1
    head = "1 error:" if len(expected) == 1 else f"{len(expected)} errors:"
    assert info.value.render().startswith(head)


def test_loader_accepts_pattern_sites_and_noise(tmp_path):
    path = write(
        tmp_path,
        NO_MODEL,
        task="\n  generator: repeated_tokens\n  noise: {positions: [1, -2], scale: 2.5, seed: 7}",
        nodes="\n  prev: L0H1\n  ind: L1H3\n  last: {at: L1H3.pattern, pos: -1}",
        claims='["effect(ind.pattern) >= 0", "restore(last) >= 0", "effect(L0H2.pattern) >= 0"]',
    )
    hyp = load_hypothesis(path)
    assert str(hyp.nodes["last"]) == "L1H3.pattern@-1"
    assert [str(s) for c in hyp.claims for s in c.sites] == [
        "L1H3.pattern",
        "L1H3.pattern@-1",
        "L0H2.pattern",
    ]
    noise = hyp.spec.task.noise
    assert (noise.position_list, noise.scale, noise.seed) == ((1, -2), 2.5, 7)


def test_loader_accepts_the_baseline(tmp_path):
    hyp = load_hypothesis(write(tmp_path, NO_MODEL))
    assert set(hyp.nodes) == {"prev", "ind"}
    assert [str(e) for e in hyp.edges] == ["L0H1 -> L1H3.k", "L1H3 -> logits"]
