"""Metrics read at the metric position (the last prompt token, or ``task.read_at``'s role).
Higher means "more of the behaviour".

Plain examples (one answer token, one wrong token) give ``logits`` [R, V] and token ids
[R]. Answer sets and multi-token answers give ``logits`` [R, K, V] at K read positions and
members [R, M, K] (M token sequences per row, padded with -1); a member's log-probability
``lp(s)`` is the sum over its tokens of ``log p(token | prompt, earlier tokens of s)``
(teacher-forced), and a set S scores ``LSE(S) = log sum_{s in S} exp(lp(s))``, the log of
the probability the model gives the set. Then:

- ``logprob`` = LSE(answers); ``prob`` = exp(LSE(answers)), the summed probability;
- ``logit_diff`` = LSE(answers) - LSE(wrongs); with one single-token answer and wrong this
  is logit(answer) - logit(wrong) exactly (the softmax normaliser cancels);
- ``prob_diff`` = exp(LSE(answers)) - exp(LSE(wrongs)) (Hanna et al. 2023's probability
  difference for greater-than);
- ``kl`` is reported as ``-KL(p_clean || p)`` at the first read position, so that the clean
  run scores 0, any other run scores lower, and ``G = KL(p_clean || p_corrupt) > 0``.
"""

from __future__ import annotations

import torch

METRIC_HELP = {
    "logit_diff": "logit(answer) - logit(wrong); for sets LSE(log p(answers)) - LSE(wrongs)",
    "logprob": "log p(answer), summed over a multi-token answer; for sets log p(set)",
    "prob": "p(answer); for sets the summed probability",
    "prob_diff": "p(answers) - p(wrongs), each summed over its set",
    "kl": "-KL(p_clean || p), 0 on the clean run",
}


def metric_values(
    name: str,
    logits: torch.Tensor,
    answer: torch.Tensor,
    wrong: torch.Tensor,
    clean_logprobs: torch.Tensor | None,
) -> torch.Tensor:
    """Per-row metric (float64, on the CPU): plain ``logits`` [R, V] with ``answer`` /
    ``wrong`` [R], or ``logits`` [R, K, V] with member tensors [R, M, K] (see the module)."""
    if answer.dim() == 3:
        return _set_values(name, logits, answer, wrong, clean_logprobs)
    logits = logits.double()
    rows = torch.arange(logits.shape[0], device=logits.device)
    if name == "logit_diff":
        return (logits[rows, answer] - logits[rows, wrong]).cpu()
    logp = torch.log_softmax(logits, dim=-1)
    if name == "logprob":
        return logp[rows, answer].cpu()
    if name == "prob":
        return logp[rows, answer].exp().cpu()
    if name == "prob_diff":
        return (logp[rows, answer].exp() - logp[rows, wrong].exp()).cpu()
    if name == "kl":
        ref = clean_logprobs.double()
        return -(ref.exp() * (ref - logp)).sum(-1).cpu()
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_HELP)}")


def set_logprob(logp: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """``LSE`` of a set per row: ``logp`` [R, K, V] log-probabilities at the read positions,
    ``members`` [R, M, K] token ids (-1 pads a short member and an absent one) -> [R]."""
    R, M, K = members.shape
    valid = members >= 0
    tok = members.clamp(min=0)
    lp = logp[:, None, :K, :].expand(R, M, K, logp.shape[-1]).gather(-1, tok[..., None])
    lp = torch.where(valid, lp[..., 0], torch.zeros((), dtype=lp.dtype, device=lp.device))
    per_member = lp.sum(-1)  # [R, M]
    present = valid.any(-1)
    per_member = torch.where(present, per_member, torch.full_like(per_member, float("-inf")))
    return torch.logsumexp(per_member, dim=-1)


def _set_values(name, logits, answer, wrong, clean_logprobs) -> torch.Tensor:
    if logits.dim() == 2:
        logits = logits[:, None, :]
    logp = torch.log_softmax(logits.double(), dim=-1)
    if name == "kl":
        ref = clean_logprobs.double()
        return -(ref.exp() * (ref - logp[:, 0])).sum(-1).cpu()
    a = set_logprob(logp, answer)
    if name == "logprob":
        return a.cpu()
    if name == "prob":
        return a.exp().cpu()
    w = set_logprob(logp, wrong)
    if name == "logit_diff":
        return (a - w).cpu()
    if name == "prob_diff":
        return (a.exp() - w.exp()).cpu()
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_HELP)}")


def metric(name: str):
    """The metric as the engine's callable."""

    def fn(logits, answer, wrong, clean_logprobs):
        return metric_values(name, logits, answer, wrong, clean_logprobs)

    fn.key = name  # type: ignore[attr-defined]  (identifies the metric in checkpoints)
    return fn
