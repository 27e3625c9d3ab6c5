"""The site and claim grammars: round trips, ordering, and rejection of near misses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from causal_mi.spec.claims import ClaimSyntaxError, parse_claim
from causal_mi.spec.sites import Kind, SiteSyntaxError, format_site, parse_site

layers = st.integers(0, 63)
site_texts = st.one_of(
    st.builds(lambda a, h: f"L{a}H{h}", layers, layers),
    st.builds(lambda a, h, c: f"L{a}H{h}.{c}", layers, layers, st.sampled_from("qkv")),
    st.builds(lambda a, h: f"L{a}H{h}.pattern", layers, layers),
    st.builds(lambda a: f"L{a}.mlp", layers),
    st.builds(lambda a: f"L{a}.mlp.in", layers),
    st.builds(lambda a, i: f"L{a}.mlp[{i}]", layers, st.integers(0, 4095)),
    st.builds(
        lambda a, r: f"L{a}.{r}", layers, st.sampled_from(["resid_pre", "resid_mid", "resid_post"])
    ),
    st.sampled_from(["embed", "logits"]),
)


@given(site_texts)
def test_site_round_trip(text):
    assert format_site(parse_site(text)) == text


@pytest.mark.parametrize(
    "bad",
    [
        "L1H",
        "H3",
        "L1H3.x",
        "L1.mlp[]",
        "L1.resid",
        "l1h3",
        "L1H3.q.k",
        "L-1H2",
        "embeds",
        "",
        "L1H3.patern",
        "L1H3.pattern.q",
        "L1.pattern",
    ],
)
def test_site_rejects(bad):
    with pytest.raises(SiteSyntaxError, match="valid forms"):
        parse_site(bad)


def test_computation_order():
    order = [
        "embed",
        "L0.resid_pre",
        "L0H3.k",
        "L0H3.pattern",
        "L0H1",
        "L0.resid_mid",
        "L0.mlp.in",
        "L0.mlp[3]",
        "L0.mlp",
        "L0.resid_post",
        "L1.resid_pre",
        "L1H0.q",
        "logits",
    ]
    keys = [parse_site(s).order_key() for s in order]
    assert keys == sorted(keys)
    assert parse_site("L0H1").order_key() == parse_site("L0H2").order_key()


def test_site_forms_name_the_pattern():
    with pytest.raises(SiteSyntaxError, match=r"L<l>H<h>\.pattern"):
        parse_site("L1H3.patern")


def test_pattern_site():
    s = parse_site("L1H3.pattern")
    assert (s.kind, s.layer, s.head) == (Kind.PATTERN, 1, 3)
    assert not s.is_input  # not an edge receiver
    assert str(s.at((-1,))) == "L1H3.pattern@-1"
    # between the head's inputs and its output, after the previous layer
    assert parse_site("L1H3.k").order_key() < s.order_key() < parse_site("L1H0").order_key()
    assert parse_site("L0.resid_post").order_key() < s.order_key()


def test_component_of_inputs():
    assert parse_site("L2H5.v").component() == parse_site("L2H5")
    assert parse_site("L2H5.pattern").component() == parse_site("L2H5")
    assert parse_site("L2.mlp.in").component().kind is Kind.MLP


@pytest.mark.parametrize(
    "text,quantity,args,op,t",
    [
        ("faithfulness >= 0.8", "faithfulness", (), ">=", 0.8),
        ("complement<=0.2", "complement", (), "<=", 0.2),
        ("effect(ind) >= 0.5", "effect", ("ind",), ">=", 0.5),
        ("total( L1H3 ) >= 1e-1", "total", ("L1H3",), ">=", 0.1),
        (
            "indirect(prev -> ind.k -> logits) >= 0.3",
            "indirect",
            ("prev", "ind.k", "logits"),
            ">=",
            0.3,
        ),
        ("direct(prev->logits) <= -0.05", "direct", ("prev", "logits"), "<=", -0.05),
    ],
)
def test_claims_parse(text, quantity, args, op, t):
    c = parse_claim(text)
    assert (c.quantity, c.args, c.op, c.threshold) == (quantity, args, op, t)


@pytest.mark.parametrize(
    "bad,fragment",
    [
        ("faithfulness > 0.8", "not supported"),
        ("faithfulness == 0.8", "not supported"),
        ("effect(a, b) >= 1", "takes one node"),
        ("indirect(a -> b) >= 1", "takes a path"),
        ("effect(a)", "no comparison"),
        ("faithfulnes >= 0.8", "did you mean faithfulness"),
        ("faithfulness >= high", "malformed claim"),
        ("__import__('os') >= 1", "unknown quantity"),
    ],
)
def test_claims_reject(bad, fragment):
    with pytest.raises(ClaimSyntaxError, match=fragment):
        parse_claim(bad)


def test_decision_rule():
    c = parse_claim("effect(x) >= 0.5")
    assert c.holds(0.5, 0.9) and not c.holds(0.49, 0.9)
    c = parse_claim("effect(x) <= 0.05")
    assert c.holds(-1, 0.05) and not c.holds(-1, 0.051)
