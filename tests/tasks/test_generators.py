"""The literature generators: deterministic by seed, every row valid for the tokenizer and
true to its source's construction (checked from the decoded tokens, not from the
generator's own bookkeeping), and a broken template is caught."""

from __future__ import annotations

import pytest

from causal_mi.tasks import literature as lit
from causal_mi.tasks.generators import GENERATORS, check_params, resolved_params

LITERATURE = ("ioi", "greater_than", "docstring", "gendered_pronoun", "factual_recall", "induction")
ROLES = {
    "ioi": {"IO", "S1", "S1_next", "S2", "END"},
    "greater_than": {"XX1", "YY", "XX2", "END"},
    "docstring": {"A_def", "B_def", "C_def", "D_def", "A_doc", "B_doc", "END"},
    "gendered_pronoun": {"OCC", "END"},
    "factual_recall": {"subject", "subject_last", "END"},
    "induction": {"A1", "B1", "END"},
}


def make(name: str, view, n: int = 24, seed: int = 0, **params):
    gen = GENERATORS[name]
    assert not check_params(gen, params)
    return gen.make(view, n, seed, resolved_params(gen, params))


def word(view, ex, prompt: str, role: str) -> str:
    tokens = ex.clean if prompt == "clean" else ex.corrupt
    return view.decode([tokens[ex.roles_of(prompt)[role][-1]]]).strip()


def check_rows(name: str, view, exs) -> None:
    """Every row valid for ``view``: ids in its vocabulary, BOS first, every role in range
    and one token where a site can use it, answers single tokens, and the construction of
    the generator's source, read back from the decoded tokens."""
    bos = view.bos_id
    for ex in exs:
        for prompt in ("clean", "corrupt"):
            tokens = ex.clean if prompt == "clean" else ex.corrupt
            assert tokens[0] == bos, ex.source
            assert all(0 <= t < view.vocab_size for t in tokens)
            assert view.tokenizer.unk_token_id not in tokens[1:], (ex.source, view.decode(tokens))
            roles = ex.roles_of(prompt)
            assert set(roles) == ROLES[name], (ex.source, roles)
            assert all(0 < p < len(tokens) for ps in roles.values() for p in ps)
            assert roles["END"] == (len(tokens) - 1,)
        for s in (*ex.answer_set, *ex.wrong_set):
            assert len(s) == 1
        assert not set(ex.answer_set) & set(ex.wrong_set), ex.source
        _construction(name, view, ex)


def _construction(name: str, view, ex) -> None:
    answer = view.decode([ex.answer]).strip()
    wrong = view.decode([ex.wrong]).strip()
    if name == "ioi":
        io, s1, s2 = (word(view, ex, "clean", r) for r in ("IO", "S1", "S2"))
        assert (answer, wrong) == (io, s1) and s1 == s2 != io
        c = [word(view, ex, "corrupt", r) for r in ("IO", "S1", "S2")]
        assert len(set(c)) == 3, c  # ABC: three distinct names
        assert ex.clean[-1] == ex.corrupt[-1] and view.decode([ex.clean[-1]]).strip() == "to"
        pos = ex.roles_of("clean")
        assert pos["S1"] < pos["S2"] and pos["IO"] < pos["S2"]
    elif name == "greater_than":
        yy = int(word(view, ex, "clean", "YY"))
        years = sorted(int(view.decode(list(s))) for s in ex.answer_set)
        below = sorted(int(view.decode(list(s))) for s in ex.wrong_set)
        assert years == list(range(yy + 1, 100)) and below == list(range(yy + 1))
        assert word(view, ex, "corrupt", "YY") == "01"
        assert word(view, ex, "clean", "XX1") == word(view, ex, "clean", "XX2")
    elif name == "docstring":
        assert answer == word(view, ex, "clean", "C_def")
        assert word(view, ex, "clean", "A_doc") == word(view, ex, "clean", "A_def")
        assert word(view, ex, "clean", "B_doc") == word(view, ex, "clean", "B_def")
        others = {view.decode(list(s)).strip() for s in ex.wrong_set}
        assert others == {word(view, ex, "clean", r) for r in ("A_def", "B_def", "D_def")}
        assert word(view, ex, "corrupt", "C_def") != answer
        assert view.decode(list(ex.clean[-2:])).replace(" ", "") == ":param"
    elif name == "gendered_pronoun":
        from causal_mi.tasks.natural import OCCUPATIONS

        occ = dict(OCCUPATIONS)[word(view, ex, "clean", "OCC")]
        assert (answer, wrong) == ((occ, "she") if occ == "he" else (occ, "he"))
        assert word(view, ex, "corrupt", "OCC") == "person"
    elif name == "factual_recall":
        from causal_mi.tasks.natural import facts

        subject = view.decode([ex.clean[p] for p in ex.roles_of("clean")["subject"]]).strip()
        objects = {f["object"].strip() for f in facts() if f["subject"] == subject}
        assert answer in objects, (subject, answer)
        assert len(ex.clean) == len(ex.corrupt)
    elif name == "induction":
        r = ex.roles_of("clean")
        assert ex.clean[r["END"][0]] == ex.clean[r["A1"][0]]
        assert ex.clean[r["B1"][0]] == ex.answer
        assert ex.corrupt[r["B1"][0]] == ex.wrong


@pytest.mark.parametrize("name", LITERATURE)
def test_deterministic_and_valid(words_view, name):
    a = make(name, words_view, seed=3)
    assert a == make(name, words_view, seed=3)
    assert a != make(name, words_view, seed=4)
    assert len(a) == 24
    check_rows(name, words_view, a)


@pytest.mark.parametrize("name", LITERATURE)
def test_valid_for_gpt2_bpe(gpt2_bpe_view, name):
    check_rows(name, gpt2_bpe_view, make(name, gpt2_bpe_view, n=40))


def test_ioi_orders(words_view):
    for order, first in (("ABBA", "IO"), ("BABA", "S1")):
        for ex in make("ioi", words_view, order=order):
            r = ex.roles_of("clean")
            assert min(r["IO"], r["S1"]) == r[first], ex.source
    assert check_params(GENERATORS["ioi"], {"order": "AABB"})


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("Then, {S1} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to", "no value"),
        ("Then, {S1} and {IO} went to the {PLACE}. She gave a {OBJECT} to", "lacks"),
    ],
    ids=["typo", "missing-role"],
)
def test_broken_template_is_refused(words_view, monkeypatch, broken, message):
    monkeypatch.setattr(lit, "IOI_TEMPLATES", (broken,))
    with pytest.raises(ValueError, match=message):
        make("ioi", words_view)


def test_row_check_fails_on_a_wrong_template(words_view, monkeypatch):
    """A template that parses but breaks the construction (S2 reads the IO name) is caught
    by the row check, so the check can fail."""
    monkeypatch.setattr(
        lit, "IOI_TEMPLATES", ("Then, {S1} and {IO} went to the {PLACE}. {S2} gave a {OBJECT} to",)
    )
    good = make("ioi", words_view, n=4, order="BABA")
    check_rows("ioi", words_view, good)
    swapped = "Then, {S1} and {S2} went to the {PLACE}. {IO} gave a {OBJECT} to"
    monkeypatch.setattr(lit, "IOI_TEMPLATES", (swapped,))
    with pytest.raises(AssertionError):
        check_rows("ioi", words_view, make("ioi", words_view, n=4, order="BABA"))


def test_noise_on_the_subject_role(tmp_path, words_view):
    """factual_recall with task.noise on role subject: every subject token is noised."""
    from causal_mi.spec.schema import Hypothesis
    from causal_mi.tasks.registry import build_task

    hyp = Hypothesis.model_validate(
        {
            "version": 1, "name": "t", "model": "path:.",
            "task": {"generator": "factual_recall", "n": 30, "noise": {"positions": "subject"}},
        }
    )  # fmt: skip
    task = build_task(hyp, tmp_path / "h.yaml", words_view)
    for ex in task.examples:
        assert ex.corrupt == ex.clean
        assert ex.noise.positions == ex.roles_of("clean")["subject"]
    multi = [ex for ex in task.examples if len(ex.roles_of("clean")["subject"]) > 1]
    assert multi, "some subject must span several tokens"
