"""Task files with roles, templates and answer sets through the CLI: what loads, what is
refused (exit 2, file:line, the fix), and that a role-stated file measures what the same
file with positions measures."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from causal_mi.cli import app

T = "w1 {IO} w2 {S1} w3 {S2} w4"  # BOS, w1, IO=2, w2, S1=4, w3, S2=6, w4=END
ROWS = [
    {"values": {"IO": "w5", "S1": "w6", "S2": "w6"}, "corrupt_values": {"S2": "w7"}},
    {"values": {"IO": "w8", "S1": "w9", "S2": "w9"}, "corrupt_values": {"S2": "w10"}},
    {"values": {"IO": "w11", "S1": "w12", "S2": "w12"}, "corrupt_values": {"S2": "w13"}},
    {"values": {"IO": "w14", "S1": "w15", "S2": "w15"}, "corrupt_values": {"S2": "w16"}},
    {"values": {"IO": "w17", "S1": "w18", "S2": "w18"}, "corrupt_values": {"S2": "w19"}},
    {"values": {"IO": "w20", "S1": "w21", "S2": "w21"}, "corrupt_values": {"S2": "w22"}},
]


def template_rows(**extra) -> list[dict]:
    return [
        {
            "template": T,
            **copy.deepcopy(r),
            "answer": " " + r["values"]["IO"],
            "wrong": " " + r["values"]["S1"],
        }
        | extra
        for r in ROWS
    ]


def text_rows() -> list[dict]:
    """The same prompts as :func:`template_rows`, roles as token positions."""
    out = []
    for r in ROWS:
        v = r["values"]
        c = {**v, **r["corrupt_values"]}
        out.append(
            {
                "clean": f"w1 {v['IO']} w2 {v['S1']} w3 {v['S2']} w4",
                "corrupt": f"w1 {c['IO']} w2 {c['S1']} w3 {c['S2']} w4",
                "answer": " " + v["IO"],
                "wrong": " " + v["S1"],
                "roles": {"IO": 2, "S1": 4, "S2": 6},
            }
        )
    return out


def write(tmp: Path, model: Path, rows: list, nodes: str, claims: list[str], **task) -> Path:
    data = tmp / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    extra = "".join(f", {k}: {v}" for k, v in task.items())
    text = (
        "version: 1\nname: roles\n"
        f"model: path:{model}\n"
        f"task: {{file: pairs.jsonl, n: 20{extra}}}\n"
        "metric: logit_diff\nablation: resample\nbootstrap: 200\n"
        f"nodes: {nodes}\n"
        "claims:\n" + "".join(f"  - {c}\n" for c in claims)
    )
    path = tmp / "hyp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def verify(path: Path, out: Path) -> tuple[int, str]:
    r = CliRunner().invoke(
        app, ["verify", str(path), "--out", str(out), "--no-ablation-check", "--no-dowhy"]
    )
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert "Traceback" not in r.output
    return r.exit_code, r.output


def at(text: str, file: Path, line: int, *fragments: str) -> None:
    msgs = [ln for ln in text.splitlines() if f"{file}:{line}:" in ln]
    assert msgs, f"nothing at {file}:{line}\n{text}"
    for f in fragments:
        assert any(f in m for m in msgs), f"{f!r} not at {file}:{line}\n{text}"


CLAIMS = ["effect(a) >= -100", "effect(b) <= 100", "effect(L0H2) >= -100"]


def _numbers(out: Path) -> dict[str, tuple]:
    res = json.loads((out / "results.json").read_text())
    return {
        c["text"]: (c["point"], c["lower"], c["upper"], c.get("status", c["passed"]))
        for c in res["claims"]
    }


def test_roles_and_templates_measure_what_positions_measure(tmp_path, attn_only_dir):
    """One file states its nodes at roles over template rows, one at roles over position
    rows, one at integer positions: identical numbers, every claim's."""
    nodes_roles = "{a: {at: L0H1, pos: S2}, b: {at: L1H3, pos: [IO, END]}}"
    nodes_pos = "{a: {at: L0H1, pos: 6}, b: {at: L1H3, pos: [2, -1]}}"
    got = {}
    for name, rows, nodes in (
        ("template", template_rows(), nodes_roles),
        ("text", text_rows(), nodes_roles),
        ("positions", text_rows(), nodes_pos),
    ):
        d = tmp_path / name
        d.mkdir()
        code, text = verify(write(d, attn_only_dir, rows, nodes, CLAIMS), d / "out")
        assert code in (0, 1), text  # measured (a random model's gap may be undecidable)
        got[name] = (code, _numbers(d / "out"))
    assert got["template"] == got["text"] == got["positions"]
    assert abs(got["positions"][1]["effect(a) >= -100"][0]) > 1e-6  # the patch does something


def test_role_a_row_lacks(tmp_path, attn_only_dir):
    rows = text_rows()
    del rows[2]["roles"]["S2"]
    path = write(tmp_path, attn_only_dir, rows, "{a: {at: L0H1, pos: S2}}", CLAIMS[:1])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 3, "lacks role 'S2'", "this row defines: END, IO, S1")
    assert "give it 'S2'" in text


def test_unknown_role(tmp_path, attn_only_dir):
    path = write(tmp_path, attn_only_dir, text_rows(), "{a: {at: L0H1, pos: S3}}", CLAIMS[:1])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, path, 8, "unknown role 'S3'", "END, IO, S1, S2")


def test_placeholder_without_value(tmp_path, attn_only_dir):
    rows = template_rows()
    del rows[1]["values"]["S1"]
    path = write(tmp_path, attn_only_dir, rows, "{a: {at: L0H1, pos: S2}}", CLAIMS[:1])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 2, "placeholder {S1} has no value", "values given:")


def test_multi_token_member_of_an_answer_set(tmp_path, attn_only_dir):
    rows = text_rows()
    rows[3]["answer"] = [" w5", " w6 w7"]
    path = write(tmp_path, attn_only_dir, rows, "{a: {at: L0H1, pos: S2}}", CLAIMS[:1])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 4, "' w6 w7' is 2 tokens", "must be a single token", "fix:")


def test_multi_token_answer_needs_logprob(tmp_path, attn_only_dir):
    rows = text_rows()
    rows[0]["answer"] = " w5 w6"
    path = write(tmp_path, attn_only_dir, rows, "{a: {at: L0H1, pos: S2}}", CLAIMS[:1])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 1, "single token for metric 'logit_diff'", "logprob")
    path.write_text(path.read_text().replace("metric: logit_diff", "metric: logprob"))
    code, text = verify(path, tmp_path / "out")
    assert code in (0, 1), text


def test_read_at_role_and_answer_sets_run(tmp_path, attn_only_dir):
    rows = text_rows()
    for r in rows:
        r["answer"], r["wrong"] = [r["answer"], " w30"], [r["wrong"], " w31"]
    path = write(
        tmp_path, attn_only_dir, rows, "{a: {at: L0H1, pos: IO}}", CLAIMS[:1], read_at="S2"
    )
    code, text = verify(path, tmp_path / "out")
    assert code in (0, 1), text
    path.write_text(path.read_text().replace("read_at: S2", "read_at: S9"))
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    assert re.search(r"task.read_at: unknown role 'S9'; the task defines: END, IO, S1, S2", text)


def test_prompts_of_different_lengths_run_end_to_end(tmp_path, attn_only_dir):
    """Clean and corrupt prompts of different lengths: nodes at roles with zero ablation
    measure end to end; under resample ablation, faithfulness (all positions) is refused."""
    rows = text_rows()
    for r in rows[::2]:
        r["corrupt"] = "w33 " + r["corrupt"]
        r["corrupt_roles"] = {k: v + 1 for k, v in r["roles"].items()}
    nodes = "{a: {at: L0H1, pos: S2}, b: {at: L1H3, pos: [IO, END]}}"
    path = write(tmp_path, attn_only_dir, rows, nodes, CLAIMS[:2])
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 1, "clean prompt is 8 tokens but corrupt is 9", "zero")
    path.write_text(path.read_text().replace("ablation: resample", "ablation: zero"))
    code, text = verify(path, tmp_path / "out")
    assert code in (0, 1), text
    assert (tmp_path / "out" / "results.json").exists()
    whole = write(tmp_path, attn_only_dir, rows, "{a: L0H1}", CLAIMS[:1])
    whole.write_text(whole.read_text().replace("ablation: resample", "ablation: zero"))
    code, text = verify(whole, tmp_path / "out")
    assert code == 2, text
    at(text, tmp_path / "pairs.jsonl", 1, "L0H1 patch all positions")


def test_edges_on_answer_sets_are_refused_before_measuring(tmp_path, attn_only_dir):
    rows = text_rows()
    for r in rows:
        r["answer"] = [r["answer"], " w30"]
    path = write(tmp_path, attn_only_dir, rows, "{a: L0H1, b: L1H3}", CLAIMS[:1])
    path.write_text(path.read_text().replace("claims:", 'edges: ["a -> b.k"]\nclaims:'))
    code, text = verify(path, tmp_path / "out")
    assert code == 2, text
    at(text, path, line_of(path, "edges:"), "path-patching", "drop the edges")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)
