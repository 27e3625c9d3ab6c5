"""``causal-mi export`` (and ``verify --export``): a results.json written by a real ``verify``
of a shipped zoo file, exported to TensorBoard and to an offline W&B run, then read back
with each tracker's own reader (TensorBoard's ``EventAccumulator``; the W&B run's
transaction log decoded with wandb's protobuf schema, ``wandb_log.py``) and compared with the
numbers in results.json. The expected tags are built here from the documented naming rule,
not by the exporter. Also: a tampered value is detected, and every user error exits 2 with
its message pinned."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from causal_mi.cli import app
from causal_mi.report.export import from_results
from tests.report.wandb_log import CorruptLog, read_run

MISSING = (
    "{label} export needs the Python package '{package}', which is not installed; install "
    "the export extra: pip install 'causal-mi[export]'"
)
ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "handmade-induction"


def expected(doc: dict[str, Any]) -> dict[str, float]:
    """The scalars the documented tags must hold, straight from results.json."""
    claim_code = {"holds": 1, "fails": 0, "undefined": 0, "not decidable": -1}
    out: dict[str, float] = {}
    for c in doc["claims"]:
        base = "claims/" + " ".join(c["text"].split())
        for tag, key in (("estimate", "point"), ("lower", "lower"), ("upper", "upper")):
            if c[key] is not None:
                out[f"{base}/{tag}"] = c[key]
        out[f"{base}/threshold"] = c["threshold"]
        out[f"{base}/verdict"] = claim_code[c["status"]]
    g = doc["baseline"]
    out["gap/G"] = g["G"]
    out["gap/lower"], out["gap/upper"] = g["G_interval"]
    for p in doc["properties"]:
        out[f"properties/{p['name']}/status"] = {"holds": 1, "fails": 0, "vacuous": -1}[p["status"]]
    decided = doc["verdict"] != "not decidable"
    out["verdict/claims"] = int(doc["claims_passed"]) if decided else -1
    return out


def mismatches(want: dict[str, float], got: dict[str, float], cast=float) -> list[str]:
    """Tags missing from ``got`` or holding another value (``cast``: the tracker's float)."""
    return [
        f"{tag}: expected {value}, got {got.get(tag)}"
        for tag, value in want.items()
        if tag not in got or got[tag] != cast(value)
    ]


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def _events(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _scalars_at(acc, step: int) -> dict[str, float]:
    return {
        tag: e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag) if e.step == step
    }


@pytest.fixture(scope="module")
def results(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def tensorboard_dir(report_dir: Path, tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("tb") / "induction"
    r = _invoke(["export", str(report_dir / "results.json"), "--to", "tensorboard", str(logdir)])
    assert r.exit_code == 0, r.output
    assert "exported 1 step(s) to TensorBoard event file" in r.output
    return logdir


@pytest.fixture(scope="module")
def wandb_run_dir(report_dir: Path, failing_report_dir: Path, tmp_path_factory) -> Path:
    """An offline W&B run of two checkpoints given out of order (the failing file at step
    2000, the passing one at 1000); W&B's directories in a temporary folder and its server
    address a closed local port, so nothing could be sent even by mistake."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(root))
        for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            mp.setenv(var, str(root / var.lower()))
        mp.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
        mp.delenv("WANDB_API_KEY", raising=False)
        mp.delenv("WANDB_ERROR_REPORTING", raising=False)
        r = _invoke(
            ["export", str(failing_report_dir), str(report_dir), "--to", "wandb"]
            + ["--project", "circuits", "--step", "2000", "--step", "1000"]
        )
    assert r.exit_code == 0, r.output
    (run_dir,) = (root / "wandb").glob("*run-*")
    assert f"W&B offline run {run_dir} (nothing uploaded" in r.output
    return run_dir


def test_tensorboard_holds_every_claim_g_and_property(tensorboard_dir, results):
    acc = _events(tensorboard_dir)
    want = expected(results)
    assert len(want) >= 7 * 5 + 3 + 2 + 1  # 7 claims, G, 2 properties, the file verdict
    assert mismatches(want, _scalars_at(acc, 0), cast=np.float32) == []
    texts = {
        t: acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in acc.Tags()["tensors"]
    }
    prov = texts["provenance/text_summary"]
    assert results["model"]["weights_sha256"] in prov
    assert f"| seed | `{results['provenance']['seed']}` |" in prov
    assert f"| causal-mi | `{results['provenance']['versions']['causal-mi']}` |" in prov
    assert texts["claims/effect(ind) >= 0.9/status/text_summary"] == "holds"


def test_wandb_offline_run_holds_every_claim_and_provenance(
    wandb_run_dir, results, report_dir, failing_report_dir
):
    assert wandb_run_dir.name.startswith("offline-run-")  # offline: nothing was synced
    core_log = (wandb_run_dir / "logs" / "debug-core.log").read_text()
    assert '"disable-analytics":true' in core_log  # no error reports either
    run = read_run(wandb_run_dir)
    failing = json.loads((failing_report_dir / "results.json").read_text())
    # the run is named, and described, by its last step's file
    assert (run.project, run.name) == ("circuits", failing["hypothesis"]["name"])
    assert run.config["hypothesis"]["name"] == failing["hypothesis"]["name"]
    assert list(run.history) == [1000, 2000]  # logged in step order
    assert mismatches(expected(results), run.history[1000]) == []
    assert mismatches(expected(failing), run.history[2000]) == []
    assert mismatches(expected(failing), run.summary) == []  # the last step's values
    assert run.summary["claims/faithfulness >= 0.9/status"] == "fails"
    assert run.summary["verdict/status"] == failing["verdict"] == "fail"
    assert [s["step"] for s in run.config["steps"]] == [1000, 2000]
    assert run.config["model"]["weights_sha256"] == results["model"]["weights_sha256"]
    assert run.config["provenance"]["seed"] == results["provenance"]["seed"]
    assert run.config["provenance"]["causal_mi_version"] == "0.1.0"
    assert run.config["steps"][0]["results"] == str(report_dir / "results.json")


def test_a_tampered_value_is_detected(tensorboard_dir, wandb_run_dir, results, tmp_path):
    tampered = json.loads(json.dumps(results))
    tampered["claims"][2]["point"] += 0.01
    tag = f"claims/{results['claims'][2]['text']}/estimate"
    tb = _scalars_at(_events(tensorboard_dir), 0)
    assert [m.split(":")[0] for m in mismatches(expected(tampered), tb, np.float32)] == [tag]
    wb = read_run(wandb_run_dir).history[1000]
    assert [m.split(":")[0] for m in mismatches(expected(tampered), wb)] == [tag]
    # a byte changed in the W&B log itself is caught by its checksum
    copy = tmp_path / wandb_run_dir.name
    shutil.copytree(wandb_run_dir, copy)
    (log,) = copy.glob("run-*.wandb")
    data = bytearray(log.read_bytes())
    at = data.index(b"0.857142865")
    data[at + 2] = ord("9")
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match="checksum mismatch"):
        read_run(copy)


def test_checkpoints_exported_one_at_a_time_make_one_series(
    report_dir, failing_report_dir, tmp_path
):
    """The docs/ci.md loop: one export per checkpoint into one log directory, --step each."""
    logdir = tmp_path / "tb"
    for step, d in ((1000, report_dir), (2000, failing_report_dir)):
        r = _invoke(["export", str(d), "--to", f"tensorboard:{logdir}", "--step", str(step)])
        assert r.exit_code == 0, r.output
    acc = _events(logdir)
    for step, d in ((1000, report_dir), (2000, failing_report_dir)):
        doc = json.loads((d / "results.json").read_text())
        assert mismatches(expected(doc), _scalars_at(acc, step), np.float32) == []
    assert [e.value for e in acc.Scalars("verdict/passed")] == [1.0, 0.0]


def test_null_numbers_are_left_out_and_codes_follow_the_status():
    doc = {
        "claims": [
            {"text": "effect(a)  >= 0.5", "point": 0.4, "lower": None, "upper": None,
             "threshold": 0.5, "op": ">=", "status": "not decidable"},
            {"text": "total(b) ~= 0 +- 0.1", "point": 0.0, "lower": -0.05, "upper": 0.2,
             "threshold": 0.0, "tolerance": 0.1, "op": "~=", "status": "fails"},
            {"text": "total(b) ~= 0 +- 0.1", "point": 0.0, "lower": -0.05, "upper": 0.05,
             "threshold": 0.0, "tolerance": 0.1, "op": "~=", "status": "holds"},
        ],
        "properties": [{"name": "a -> b", "status": "vacuous", "detail": "premise never seen"}],
        "verdict": "not decidable",
    }  # fmt: skip
    s = from_results(doc, step=3).scalars
    assert "claims/effect(a) >= 0.5/lower" not in s
    assert s["claims/effect(a) >= 0.5/verdict"] == -1
    assert s["claims/total(b) ~= 0 +- 0.1/tolerance"] == 0.1
    assert s["claims/total(b) ~= 0 +- 0.1 #2/verdict"] == 1  # a repeated text is numbered
    assert s["properties/a -> b/status"] == -1
    assert (s["verdict/claims"], s["verdict/passed"]) == (-1, 0)


@pytest.mark.parametrize(
    ("target", "module", "label"),
    [("tensorboard:tb", "tensorboard", "TensorBoard"), ("wandb", "wandb", "W&B")],
)
def test_a_missing_package_names_the_extra(
    report_dir, tmp_path, monkeypatch, target, module, label
):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    r = _invoke(["export", str(report_dir), "--to", target])
    assert r.exit_code == 2, r.output
    assert f"causal-mi: {MISSING.format(label=label, package=module)}" in r.output
    # verify checks it before loading anything: nothing measured, nothing written
    out = tmp_path / "out"
    r = _invoke(["verify", str(ZOO / "true.yaml"), "--out", str(out), "--export", target])
    assert r.exit_code == 2 and MISSING.format(label=label, package=module) in r.output
    assert not out.exists() and not (tmp_path / "tb").exists()


def test_an_online_run_that_cannot_start_is_the_users_to_fix(report_dir, monkeypatch):
    """WANDB_MODE=online without a login: W&B's usage error becomes exit 2 with the way out
    (wandb.init stubbed: no service is started and nothing could be sent)."""
    import wandb

    def refuse(**kwargs):
        assert kwargs["mode"] == "online"  # the user's explicit choice is honoured
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "init", refuse)
    r = _invoke(["export", str(report_dir), "--to", "wandb"])
    assert r.exit_code == 2, r.output
    assert (
        "causal-mi: W&B could not start a run (mode online): No API key configured. Use "
        "`wandb login` to log in. For an offline run instead, unset WANDB_MODE: the run is "
        "written locally and 'wandb sync' uploads it later"
    ) in r.output


def test_several_files_verified_at_once_export_one_folder_each(report_dir, tmp_path):
    """``verify a.yaml b.yaml --export tensorboard:DIR`` writes DIR/<file stem> per file."""
    from causal_mi.export_command import after_run
    from causal_mi.report.export import parse_target

    said: list[str] = []
    target = parse_target(f"tensorboard:{tmp_path}")
    after_run(report_dir / "results.json", [target], sub="true", echo=said.append)
    (event,) = (tmp_path / "true").glob("events.out.tfevents.*")
    assert said == [
        f"  exported: TensorBoard event file {event} (view: tensorboard --logdir "
        f"{tmp_path / 'true'})"
    ]


def test_bad_results_files_exit_2_naming_them(tmp_path):
    missing = tmp_path / "nowhere" / "results.json"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "someone-else/v3"}))
    binary = tmp_path / "model.safetensors"
    binary.write_bytes(b"\xff\xfe\x00binary")
    r = _invoke(["export", str(missing), str(other), str(binary), "--to", "wandb"])
    assert r.exit_code == 2, r.output
    assert (
        f"{missing}: no such file; give a results.json that run or verify wrote (or its folder)"
        in r.output
    )
    assert (
        f"{other}: schema is 'someone-else/v3'; expected causal-mi/results/v1 or later" in r.output
    )
    assert f"{binary}: not a results.json:" in r.output
    assert "3 errors" in r.output and "Traceback" not in r.output


def test_bad_targets_and_steps_exit_2(report_dir, tmp_path):
    cases = [
        (["--to", "tensorboard"], "--to tensorboard needs a log directory"),
        (["--to", "mlflow"], "--to 'mlflow': unknown export target; valid: tensorboard:DIR"),
        (["--to", "wandb", "--step", "1", "--step", "2"], "--step was given 2 time(s) for 1"),
        (["--to", f"tensorboard:{tmp_path}", "--project", "p"], "--project and --name apply"),
    ]
    for extra, message in cases:
        r = _invoke(["export", str(report_dir), *extra])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
    # a results folder given last to --to tensorboard is not taken as the log directory
    r = _invoke(["export", str(report_dir), str(report_dir), "--to", "tensorboard"])
    assert r.exit_code == 2 and "is a results file or folder, not a log directory" in r.output
    assert not list(report_dir.glob("events.out.tfevents.*"))
    r = _invoke(["export", str(report_dir), str(report_dir), "--to", "wandb", "--step", "5",
                 "--step", "5"])  # fmt: skip
    assert r.exit_code == 2 and "--step 5 is given to several results files" in r.output


@pytest.mark.slow
def test_verify_export_writes_what_results_json_holds(tmp_path, monkeypatch):
    """``verify --export``: both trackers hold the numbers of the results.json the same
    verify wrote (about a minute on a loaded 2-core machine, hence slow)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    src = tmp_path / "true.yaml"
    src.write_text((ZOO / "true.yaml").read_text().replace("n: 100", "n: 10"))
    out, tb, wb = tmp_path / "out", tmp_path / "tb", tmp_path / "wb"
    args = ["verify", str(src), "--out", str(out), "--no-dowhy", "--no-ablation-check"]
    r = _invoke([*args, "--export", f"tensorboard:{tb}", "--export", f"wandb:{wb}"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    assert mismatches(expected(doc), _scalars_at(_events(tb), 0), np.float32) == []
    (run_dir,) = (wb / "wandb").glob("offline-run-*")
    assert mismatches(expected(doc), read_run(run_dir).history[0]) == []
