"""Metrics read at the last position (SPEC 2). Higher means "more of the behaviour".

``kl`` is reported as ``-KL(p_clean || p)``, so that the clean run scores 0, any other run
scores lower, and ``G = m(clean) - m(corrupt) = KL(p_clean || p_corrupt) > 0``.
"""

from __future__ import annotations

import torch

METRIC_HELP = {
    "logit_diff": "logit(answer) - logit(wrong)",
    "logprob": "log p(answer)",
    "prob": "p(answer)",
    "kl": "-KL(p_clean || p), 0 on the clean run",
}


def metric_values(
    name: str,
    logits: torch.Tensor,
    answer: torch.Tensor,
    wrong: torch.Tensor,
    clean_logprobs: torch.Tensor | None,
) -> torch.Tensor:
    """Per-row metric: ``logits`` [R, V] at the last position -> [R] (float64)."""
    logits = logits.double()
    rows = torch.arange(logits.shape[0], device=logits.device)
    if name == "logit_diff":
        return (logits[rows, answer] - logits[rows, wrong]).cpu()
    logp = torch.log_softmax(logits, dim=-1)
    if name == "logprob":
        return logp[rows, answer].cpu()
    if name == "prob":
        return logp[rows, answer].exp().cpu()
    if name == "kl":
        ref = clean_logprobs.double()
        return -(ref.exp() * (ref - logp)).sum(-1).cpu()
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_HELP)}")


def metric(name: str):
    """The metric as the engine's callable."""

    def fn(logits, answer, wrong, clean_logprobs):
        return metric_values(name, logits, answer, wrong, clean_logprobs)

    fn.key = name  # type: ignore[attr-defined]  (identifies the metric in checkpoints)
    return fn
