"""The commented hypothesis file ``causal-mi init`` writes.

As written (with the default model, ``zoo:induction-2l``) it verifies: every claim holds
(tested). Its edges are edge level, so they include the inputs from ``embed``.
"""

TEMPLATE = """\
# A causal-mi hypothesis file (version 1). Verify it with:
#   causal-mi verify {{this file}} --out reports/
# As written, on zoo:induction-2l, every claim below holds; edit it for your model.
version: 1
name: my-circuit
description: A previous-token head feeds an induction head through its keys.
model: {model}          # zoo:<name> | hf:<hub id or local dir> | path:<dir>
task:
  generator: repeated_tokens   # or: file: pairs.jsonl
  # (a pairs file holds one {{"clean","corrupt","answer","wrong"}} object per line)
  n: 200
  seed: 0
  # noise: {{positions: [1, 2], scale: 3.0, seed: 0}}  # corrupt = clean + embedding noise
metric: logit_diff      # logit_diff | logprob | prob | kl
ablation: resample      # resample | mean | zero
confidence: 0.95
nodes:   # names -> sites (L1H3, L1H3.k, L1H3.pattern, L2.mlp, L0.mlp[12], L3.resid_pre)
  prev: L0H2
  ind: L1H1
edges:   # sender -> receiver; a bare head receiver means its q, k and v. Edge-level
         # faithfulness ablates every undeclared edge, so declare the inputs from embed too.
  - embed -> prev
  - embed -> ind
  - prev -> ind.k
  - ind -> logits
  - embed -> logits
claims:                 # decided on the bootstrap bound; Holm-corrected across claims
  - effect(prev) >= 0.5
  - effect(ind) >= 0.3
  - indirect(prev -> ind.k -> logits) >= 0.15   # K-composition ...
  - indirect(prev -> ind.q -> logits) <= 0.05   # ... not Q-composition
  # - faithfulness >= 0.45  # holds for the whole circuit (all six heads of
  #                         # hypotheses/induction.yaml), not for this pair alone
# variables:            # discretized behaviour, for properties checked with Z3
#   prev_fires: {{attention: prev, to: previous, above: 0.3}}  # or self|first|induction|<pos>
#   ind_fires: {{attention: ind, to: induction, above: 0.3}}
#   on: {{activation: "L0.mlp[12]", above: 0.5}}   # quoted: [ ] in {{...}}; or levels: [0.1, 0.5]
#   correct: {{output: correct}}                               # or {{output: metric, above: 0}}
# properties:           # and, or, not, ->, <->, comparisons, exactly_one(...), at_most_one(...)
#   - ind_fires -> prev_fires
"""


ENCODER_TEMPLATE = """\
# A causal-mi hypothesis file (version 1) for an encoder ({model_type}). Verify it with:
#   causal-mi verify {{this file}} --out reports/
# Encoders run at node level (no edges: see docs/decisions.md, "Encoders and classifiers").
version: 1
name: my-circuit
description: Which heads carry the behaviour read at {read}.
model: {model}          # zoo:<name> | hf:<hub id or local dir> | path:<dir>
task:
  file: pairs.jsonl     # write it: one {{"clean","corrupt","answer","wrong"}} object per line
  # {answers}
  # n: 200              # all rows by default
metric: logit_diff      # logit_diff | logprob | prob | kl
ablation: resample      # resample | mean | zero
confidence: 0.95
nodes:   # names -> sites (L1H3, L1H3.k, L2.mlp, L0.mlp[12], L3.resid_pre; pos: CLS | MASK | END)
  first: L0H0
  last: {last}
claims:                 # decided on the bootstrap bound; Holm-corrected across claims
  - effect(last) >= 0.1
  - effect(first) ~= 0 +- 0.5   # equivalence: the whole interval inside [-0.5, 0.5]
"""

ENCODER_ANSWERS = {
    "masked_lm": "each prompt holds one {mask} token; the metric is read there (role MASK), "
    "and answer / wrong are single tokens",
    "classifier": "answer / wrong are class labels of the model ({labels}); the metric is "
    "read from the classification logits",
}


def encoder_template(model: str, config: dict) -> str | None:
    """The starting file for an encoder checkpoint's config, or None for any other model."""
    from causal_mi.models.encoders import encoder_type

    mt = encoder_type(config)
    if mt is None:
        return None
    arch = " ".join(config.get("architectures") or [])
    head = "classifier" if "SequenceClassification" in arch else "masked_lm"
    labels = ", ".join(str(v) for v in (config.get("id2label") or {}).values()) or "id2label"
    mask = "<mask>" if mt == "roberta" else "[MASK]"
    layers = int(config.get("num_hidden_layers") or config.get("n_layers") or 1)
    return ENCODER_TEMPLATE.format(
        model=model,
        model_type=mt,
        read="the mask token" if head == "masked_lm" else "the classifier's logits",
        answers=ENCODER_ANSWERS[head].format(mask=mask, labels=labels),
        last=f"L{layers - 1}H0",
    )
