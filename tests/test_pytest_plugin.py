"""Hypothesis files as pytest items: one item per claim, failures name the broken rule."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

ZOO = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo" / "handmade-induction"


def _copy(name: str, target: Path) -> None:
    """A zoo file with fewer examples (the handmade model is exact, so n barely matters)."""
    target.write_text((ZOO / name).read_text().replace("n: 100", "n: 20"))


def test_true_file_passes_one_item_per_claim_and_property(pytester):
    f = pytester.path / "true.yaml"
    _copy("true.yaml", f)
    result = pytester.runpytest_subprocess(str(f), "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=7 + 2)  # the file states 7 claims and 2 properties
    result.stdout.fnmatch_lines(["*property: ind_fires -> prev_fires PASSED*"])


def test_failing_property_fails_its_item(pytester):
    f = pytester.path / "prop.yaml"
    _copy("false-property.yaml", f)
    result = pytester.runpytest_subprocess(str(f), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*self_attn=0 (ablated)*"])


def test_false_file_fails_with_the_rule(pytester):
    f = pytester.path / "wrong.yaml"
    _copy("false-wrong-edge.yaml", f)
    result = pytester.runpytest_subprocess(str(f), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*lower bound at one-sided level 0.025 >= 0.3*"])


def test_bad_file_is_one_failing_item(pytester):
    f = pytester.path / "bad.yaml"
    f.write_text("version: 1\nname: x\nmodel: zoo:nope\ntask: {generator: repeated_tokens}\n")
    result = pytester.runpytest_subprocess(str(f), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*could not be loaded*", "*unknown zoo model 'nope'*"])


def test_yaml_files_are_not_collected_unless_asked(pytester):
    _copy("true.yaml", pytester.path / "true.yaml")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes()
    pytester.makeini("[pytest]\ncausal_mi_glob = *.yaml\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7 + 2)
