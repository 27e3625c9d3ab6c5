"""Re-verifying an unchanged file reads its decided result back (causal_mi/reuse.py): the
same outputs byte for byte, without loading the model; any changed input, option or code
measures again; a damaged or foreign saved result is never read."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from causal_mi import pipeline, reuse
from causal_mi.cli import app
from tests.cli.test_integration import PAIRS as INTEGRATION_PAIRS

PAIRS = INTEGRATION_PAIRS[:4] * 3  # the integration test's pairs

HYP = """version: 1
name: reuse
model: path:model
task: {file: pairs.jsonl, n: 12, seed: 0}
bootstrap: 300
nodes:
  a: L0H1
  b: L1H3
edges:
  - embed -> a
  - a -> b.k
  - b -> logits
  - embed -> b
claims:
  - effect(b) >= -100
  - faithfulness >= -100
"""
FAST = ["--no-dowhy", "--no-ablation-check"]


@pytest.fixture()
def workdir(gpt2_dir, tmp_path, monkeypatch):
    """A hypothesis, its task file and a private copy of the model (the tests change it)."""
    monkeypatch.setenv("CAUSAL_MI_KEY", "test-key")
    shutil.copytree(gpt2_dir, tmp_path / "model")
    rows = [{"clean": c, "corrupt": k, "answer": a, "wrong": w} for c, k, a, w in PAIRS]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "h.yaml").write_text(HYP)
    return tmp_path


@pytest.fixture()
def prepared(monkeypatch):
    """Counts the files that were loaded and measured (not read back)."""
    calls: list[str] = []
    real = pipeline.prepare

    def counting(path, **kw):
        calls.append(str(path))
        return real(path, **kw)

    monkeypatch.setattr(pipeline, "prepare", counting)
    return calls


def _verify(d, *extra):
    res = CliRunner().invoke(
        app, ["verify", str(d / "h.yaml"), "--out", str(d / "out"), *FAST, *extra]
    )
    assert res.exit_code in (0, 1), res.output
    return res


def test_an_unchanged_file_is_read_back_identically_without_loading(workdir, prepared):
    first = _verify(workdir)
    outputs = {f.name: f.read_bytes() for f in (workdir / "out").iterdir() if f.is_file()}
    assert set(outputs) == {"report.md", "report.html", "results.json", "junit.xml"}
    second = _verify(workdir)
    assert prepared == [str(workdir / "h.yaml")]  # the second run loaded nothing
    assert second.exit_code == first.exit_code
    again = {f.name: f.read_bytes() for f in (workdir / "out").iterdir() if f.is_file()}
    assert again == outputs
    assert "unchanged since their last verify" in second.output

    def summary(output):  # from the gap line on (loading prints its own lines before)
        lines = output.splitlines()
        return lines[next(i for i, x in enumerate(lines) if x.startswith("  G = ")) :]

    assert summary(second.output) == summary(first.output)


def _edit_hypothesis(d):
    (d / "h.yaml").write_text(HYP.replace("effect(b) >= -100", "effect(b) >= -99"))


def _edit_threshold_same_size(d):  # size and (within a clock tick) mtime unchanged
    (d / "h.yaml").write_text(HYP.replace("effect(b) >= -100", "effect(b) >= -101"))


def _edit_task(d):
    with (d / "pairs.jsonl").open("a") as fh:
        fh.write(json.dumps({"clean": "w1 w2", "corrupt": "w3 w2", "answer": "w4", "wrong": "w5"}))
        fh.write("\n")


def _edit_config(d):
    cfg = json.loads((d / "model" / "config.json").read_text())
    cfg["layer_norm_epsilon"] = 1e-3
    (d / "model" / "config.json").write_text(json.dumps(cfg))


def _edit_tokenizer(d):
    f = next(p for p in (d / "model").iterdir() if p.name.startswith("tokenizer"))
    f.write_text(f.read_text() + " ")


@pytest.mark.parametrize(
    "change",
    [_edit_hypothesis, _edit_threshold_same_size, _edit_task, _edit_config, _edit_tokenizer],
    ids=lambda f: f.__name__,
)
def test_a_changed_input_is_measured_again(workdir, prepared, change):
    _verify(workdir)
    change(workdir)
    _verify(workdir)
    assert len(prepared) == 2


@pytest.mark.parametrize("option", [["--no-ablation-check"], ["--format", "github"]])
def test_a_changed_option_is_measured_again(workdir, prepared, option):
    res = CliRunner().invoke(app, ["verify", str(workdir / "h.yaml"), "--out", str(workdir / "o")])
    assert res.exit_code in (0, 1), res.output
    res = CliRunner().invoke(
        app, ["verify", str(workdir / "h.yaml"), "--out", str(workdir / "o"), *option]
    )
    assert res.exit_code in (0, 1), res.output
    assert len(prepared) == 2


def test_changed_code_is_measured_again(workdir, prepared, monkeypatch):
    _verify(workdir)
    monkeypatch.setattr(reuse, "fingerprint", lambda: ("another build",))
    _verify(workdir)
    assert len(prepared) == 2


def test_no_cache_saves_and_reads_nothing(workdir, prepared):
    _verify(workdir, "--no-cache")
    _verify(workdir, "--no-cache")
    assert len(prepared) == 2
    assert not (workdir / "out" / ".cache").exists()


def _saved(d):
    (f,) = (d / "out" / ".cache" / "results").glob("*.result")
    return f


def test_a_damaged_or_foreign_result_is_never_read(workdir, prepared, monkeypatch):
    _verify(workdir)
    f = _saved(workdir)
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF  # damaged
    f.write_bytes(bytes(data))
    _verify(workdir)
    assert len(prepared) == 2
    monkeypatch.setenv("CAUSAL_MI_KEY", "someone else's key")  # signed by another user
    _verify(workdir)
    assert len(prepared) == 3
    f = _saved(workdir)
    f.write_bytes(f.read_bytes()[:100])  # torn
    _verify(workdir)
    assert len(prepared) == 4


def test_the_store_signs_what_it_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSAL_MI_KEY", "k")
    store = reuse.ResultStore(tmp_path)
    assert store.put("abc", {"x": 1})
    assert store.get("abc") == {"x": 1}
    assert store.get("other") is None
    (tmp_path / "def.result").write_bytes((tmp_path / "abc.result").read_bytes())
    assert store.get("def") is None  # a result is bound to its address


def test_the_key_file_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv("CAUSAL_MI_KEY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = reuse._secret()
    path = tmp_path / "causal-mi" / "reuse.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert reuse._secret() == key and len(key) == 64


def test_several_files_reuse_each_and_still_write_one_junit(workdir, prepared):
    (workdir / "g.yaml").write_text(HYP.replace("name: reuse", "name: reuse-2"))
    args = ["verify", str(workdir / "h.yaml"), str(workdir / "g.yaml"), "--out"]
    first = CliRunner().invoke(app, [*args, str(workdir / "many"), *FAST])
    junit = (workdir / "many" / "junit.xml").read_bytes()
    second = CliRunner().invoke(app, [*args, str(workdir / "many"), *FAST])
    assert first.exit_code == second.exit_code and first.exit_code in (0, 1)
    assert len(prepared) == 2
    assert b"reuse-2" in junit
    assert (workdir / "many" / "junit.xml").read_bytes().count(b"<testsuite ") == junit.count(
        b"<testsuite "
    )
