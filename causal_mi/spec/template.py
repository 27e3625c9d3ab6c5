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
