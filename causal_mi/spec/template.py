"""The commented hypothesis file ``causal-mi init`` writes."""

TEMPLATE = """\
# A causal-mi hypothesis file (version 1). Verify it with:
#   causal-mi verify {{this file}} --out reports/
version: 1
name: my-circuit
description: What the circuit does, in one sentence.
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
  prev: L0H1
  ind: L1H3
edges:                  # sender -> receiver (a bare head receiver means its q, k and v)
  - prev -> ind.k
  - ind -> logits
claims:                 # decided on the bootstrap bound; Holm-corrected across claims
  - faithfulness >= 0.8
  - effect(ind) >= 0.5
# variables:            # discretized behaviour, for properties checked with Z3
#   prev_fires: {{attention: prev, to: previous, above: 0.3}}  # or self|first|induction|<pos>
#   ind_fires: {{attention: ind, to: induction, above: 0.3}}
#   on: {{activation: L0.mlp[12], above: 0.5}}                 # or levels: [0.1, 0.5] (an integer)
#   correct: {{output: correct}}                               # or {{output: metric, above: 0}}
# properties:           # and, or, not, ->, <->, comparisons, exactly_one(...), at_most_one(...)
#   - ind_fires -> prev_fires
"""
