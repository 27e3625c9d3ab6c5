"""Attribution patching: a first-order estimate of every head's patching effect at once.

Patching head h's output from the clean run into the corrupt run changes the metric by
about ``(z_clean - z_corrupt) . dm/dz`` with the gradient taken on the corrupt run (Nanda,
"Attribution Patching"). Two forward passes and one backward pass give the estimate for
every head; :func:`confirm` re-measures the top k exactly and reports the estimate's error.
The integrated-gradients variant averages the gradient over ``steps`` points on the straight
line from the corrupt to the clean activations of all heads together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from causal_mi.engine.metrics import metric_values
from causal_mi.models.adapter import layer_hook
from causal_mi.models.loading import LoadedModel
from causal_mi.tasks.base import Task


@dataclass(frozen=True)
class Attribution:
    grid: np.ndarray  # [layer, head] estimated restore effect (metric units, task mean)
    method: str


def _tokens(task: Task, base: str, device: str) -> torch.Tensor:
    return torch.tensor([getattr(e, base) for e in task.examples], device=device)


def _z_cache(model: LoadedModel, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    out: dict[int, torch.Tensor] = {}
    hooks = [
        (layer_hook(la, "z"), lambda a, hook, la=la: out.__setitem__(la, a.detach().clone()))
        for la in range(model.dims.n_layers)
    ]
    with torch.no_grad(), model.bridge.hooks(fwd_hooks=hooks):
        model.bridge(tokens)
    return out


def attribute_heads(
    model: LoadedModel, task: Task, *, metric_name: str = "logit_diff", steps: int = 1
) -> Attribution:
    """Estimated restore effect of every head (``steps`` > 1: integrated gradients)."""
    lengths = {e.length for e in task.examples}
    if len(lengths) != 1:
        raise ValueError(f"attribution needs prompts of one token length; got {sorted(lengths)}")
    reads = _read_positions(model, task)
    dev = model.device
    clean, corrupt = _tokens(task, "clean", dev), _tokens(task, "corrupt", dev)
    answer = torch.tensor([e.answer for e in task.examples], device=dev)
    wrong = torch.tensor([e.wrong for e in task.examples], device=dev)
    z_clean, z_corrupt = _z_cache(model, clean), _z_cache(model, corrupt)
    with torch.no_grad():
        clean_logp = torch.log_softmax(_at(model.bridge(clean), reads, "clean"), -1)
    n_l = model.dims.n_layers
    total = {la: torch.zeros_like(z_clean[la]) for la in range(n_l)}
    alphas = [1.0] if steps <= 1 else [(i + 0.5) / steps for i in range(steps)]
    for alpha in alphas:
        # run the corrupt prompt with every head's z moved alpha of the way to clean
        # (plain attribution patching: the gradient at the corrupt point, t = 0)
        t = alpha if steps > 1 else 0.0
        points = {
            la: (z_corrupt[la] + t * (z_clean[la] - z_corrupt[la])).requires_grad_(True)
            for la in range(n_l)
        }
        hooks = [(layer_hook(la, "z"), lambda a, hook, z=points[la]: z) for la in range(n_l)]
        with torch.enable_grad(), model.bridge.hooks(fwd_hooks=hooks):
            logits = _at(model.bridge(corrupt), reads, "corrupt")
            m = metric_values(metric_name, logits, answer, wrong, clean_logp).mean()
            grads = torch.autograd.grad(m, [points[la] for la in range(n_l)])
        for la, g in enumerate(grads):
            total[la] += g / len(alphas)
    # the metric is the task mean, so the gradient already carries the 1/n: sum over rows
    grid = np.stack(
        [
            ((z_clean[la] - z_corrupt[la]) * total[la]).sum(dim=(0, 1, 3)).cpu().numpy()
            for la in range(n_l)
        ]
    )
    return Attribution(grid, "attribution" if steps <= 1 else f"integrated gradients ({steps})")


def _read_positions(model: LoadedModel, task: Task) -> dict[str, torch.Tensor] | None:
    """Per example, the position whose logits the metric reads (None: the classifier's own
    logits, read at its pooling position). Single-token answers only; the metric may be read
    at a role (a masked LM's ``MASK``) as long as the prompts keep one length."""
    why = task.not_plain()
    plain_but_read = why is not None and all(
        len(e.clean) == len(e.corrupt) and len(e.answer_set) == len(e.wrong_set) == 1
        and len(e.answer_set[0]) == len(e.wrong_set[0]) == 1
        for e in task.examples
    )  # fmt: skip
    if why is not None and not plain_but_read:
        raise ValueError(f"attribution needs single-token answers: {why}")
    if model.tokens.head == "classifier":
        return None
    return {
        base: torch.tensor([e.roles_of(base)[e.read][-1] for e in task.examples])
        for base in ("clean", "corrupt")
    }


def _at(logits: torch.Tensor, reads: dict[str, torch.Tensor] | None, base: str) -> torch.Tensor:
    """[rows, vocab] logits at each row's read position in its ``base`` prompt (a
    classifier's logits as they are)."""
    if reads is None:
        return logits.float()
    return logits[torch.arange(logits.shape[0]), reads[base].to(logits.device)].float()


def compare(estimate: np.ndarray, exact: np.ndarray, k: int = 3) -> dict[str, float]:
    """Spearman rank correlation, top-k overlap and max abs error of an estimate."""
    from scipy.stats import spearmanr

    e, x = estimate.ravel(), exact.ravel()
    top_e, top_x = set(np.argsort(-e)[:k]), set(np.argsort(-x)[:k])
    return {
        "spearman": float(spearmanr(e, x).statistic),
        "top_k_overlap": len(top_e & top_x) / k,
        "max_abs_error": float(np.abs(e - x).max()),
    }
