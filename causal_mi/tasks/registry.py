"""Build a hypothesis' task: static checks before the model loads, tokenization after.

With ``task.noise`` the corrupt prompts are ignored: each example's corrupt run is its clean
prompt with Gaussian noise on the embeddings (:class:`causal_mi.tasks.base.Noise`), drawn by
the engine; ``answer`` and ``wrong`` still come from the generator or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_mi.errors import InputError, Location, Problem, did_you_mean
from causal_mi.models.tokens import TokenizerView
from causal_mi.spec.schema import Hypothesis
from causal_mi.tasks.base import END, Example, Noise, Task
from causal_mi.tasks.generators import GENERATORS, check_params, resolved_params
from causal_mi.tasks.pairs import read_pairs, tokenize_pairs


def task_file(hyp: Hypothesis, hyp_path: Path) -> Path:
    assert hyp.task.file is not None
    p = Path(hyp.task.file)
    return p if p.is_absolute() else (hyp_path.parent / p)


def task_problems(hyp: Hypothesis, root: Any, hyp_path: Path) -> list[Problem]:
    """Everything wrong with the task that can be known without the model."""
    from causal_mi.spec.yaml_source import locate

    file = str(hyp_path)
    spec = hyp.task
    problems: list[Problem] = []
    if spec.generator is not None:
        where = locate(root, ("task", "generator"), file)
        gen = GENERATORS.get(spec.generator)
        if gen is None:
            problems.append(
                Problem(
                    where,
                    f"unknown task generator '{spec.generator}'; "
                    f"{did_you_mean(spec.generator, GENERATORS)} (or use "
                    "'file: pairs.jsonl')",
                )
            )
        else:
            where = locate(root, ("task", "params"), file)
            problems += [Problem(where, m) for m in check_params(gen, spec.params)]
        if spec.split is not None:
            problems.append(
                Problem(
                    locate(root, ("task", "split"), file),
                    "task.split applies to task files: a generator draws independent rows for "
                    "each seed (use another task.seed for an independent draw)",
                )
            )
    elif spec.file is not None:
        if spec.params:
            problems.append(
                Problem(
                    locate(root, ("task", "params"), file),
                    "task.params applies to generators only; a task file has none",
                )
            )
        path = task_file(hyp, hyp_path)
        _, file_problems = read_pairs(path, corrupt=spec.noise is None)
        where = locate(root, ("task", "file"), file)
        for p in file_problems:
            if p.location.line > 0:
                problems.append(p)
            else:  # about the whole file (missing, unreadable, empty): point at task.file
                problems.append(Problem(where, p.message))
    return problems


def build_task(hyp: Hypothesis, hyp_path: Path, tok: TokenizerView) -> Task:
    """Tokenized task; raises :class:`InputError` (exit 2) listing every bad example."""
    spec = hyp.task
    why = _encoder_task_problem(hyp, tok)
    if why:
        raise InputError(Problem(Location(str(hyp_path)), why))
    if spec.generator is not None:
        gen = GENERATORS[spec.generator]
        try:
            examples = gen.make(tok, spec.n, spec.seed, resolved_params(gen, spec.params))
        except ValueError as exc:
            raise InputError(
                Problem(Location(str(hyp_path)), f"task generator '{gen.name}': {exc}")
            ) from None
        examples = _for_metric(examples, hyp, hyp_path, gen.name)
        return Task(gen.name, _with_noise(examples, hyp, hyp_path))
    path = task_file(hyp, hyp_path)
    corrupt = spec.noise is None
    records, problems = read_pairs(path, corrupt=corrupt)
    if not problems and spec.split is not None:
        records = split_part(records, spec.split)
    if not problems:
        if spec.seed and len(records) > spec.n:
            import random

            records = sorted(random.Random(spec.seed).sample(records, spec.n))
        examples, problems = tokenize_pairs(
            path,
            records[: spec.n],
            tok,
            corrupt=corrupt,
            metric=hyp.metric,
            read=spec.read_at or tok.default_read or END,
        )
    if problems:
        raise InputError(problems)
    return Task(path.name, _with_noise(examples, hyp, hyp_path))


def _encoder_task_problem(hyp: Hypothesis, tok: TokenizerView) -> str:
    """Why an encoder cannot run this task (empty when it can): generators write
    next-token prompts for decoders; a classifier's logits come from its pooling position."""
    if not tok.encoder:
        return ""
    if hyp.task.generator is not None:
        what = (
            f"prompts with one {tok.mask_token} where the answer goes"
            if tok.head == "masked_lm"
            else "class labels (config.id2label) as answer and wrong"
        )
        return (
            f"task generator '{hyp.task.generator}' writes next-token prompts for decoder "
            f"models; this model is an encoder ({tok.head.replace('_', ' ')}), so its task is a "
            f"file (task: {{file: pairs.jsonl}}) with {what}"
        )
    if tok.head == "classifier" and hyp.task.read_at not in (None, tok.default_read):
        return (
            f"task.read_at: {hyp.task.read_at} cannot move a sequence classifier's metric: "
            "its logits are computed from its pooling position (role CLS, position 0); "
            "drop task.read_at"
        )
    return ""


def split_part(records: list, split) -> list:
    """The rows of ``split.part``: the file's rows permuted once by ``split.seed``, the first
    ``round(calibrate x rows)`` the calibration part, the rest the verification part (each
    in file order). The task seed then samples ``n`` rows within the part, so seeds of a file
    task are subsets of one part, never rows of the other."""
    import random

    order = list(range(len(records)))
    random.Random(split.seed).shuffle(order)
    k = round(split.calibrate * len(records))
    keep = sorted(order[:k] if split.part == "calibrate" else order[k:])
    return [records[i] for i in keep]


def _for_metric(
    examples: list[Example], hyp: Hypothesis, hyp_path: Path, name: str
) -> list[Example]:
    """A generator's examples read at ``task.read_at``; multi-token answers only under a
    log-probability metric (an :class:`InputError` naming the example otherwise)."""
    import dataclasses

    read = hyp.task.read_at or END
    if hyp.metric not in ("logprob",):
        bad = next((e for e in examples if any(len(s) > 1 for s in e.answer_set)), None)
        if bad is not None:
            raise InputError(
                Problem(
                    Location(str(hyp_path)),
                    f"task generator '{name}': {bad.source} has a multi-token answer, which "
                    f"metric '{hyp.metric}' cannot score; use metric: logprob (summed "
                    "log-probability) or a generator setting with single-token answers",
                )
            )
    if read == END:
        return examples
    return [dataclasses.replace(e, read=read) for e in examples]


def _with_noise(examples: list[Example], hyp: Hypothesis, hyp_path: Path) -> tuple[Example, ...]:
    """The examples, corrupted by ``task.noise`` if the file asks for it: each corrupt prompt
    becomes the clean prompt and example i gets the noise draw ``(seed, i)``. Positions must
    lie inside the shortest prompt and roles must exist in every prompt (an
    :class:`InputError` at the position otherwise); a role noises every token it covers."""
    import dataclasses

    noise = hyp.task.noise
    if noise is None or not examples:
        return tuple(examples)
    positions = noise.position_list
    shortest = min(e.length for e in examples)
    problems = []
    for i, p in enumerate(positions):
        if isinstance(p, str):
            lacking = next((e for e in examples if p not in e.roles_of("clean")), None)
            if lacking is not None:
                defined = ", ".join(sorted(lacking.roles_of("clean")))
                problems.append(
                    (
                        i,
                        f"task.noise.positions: role {p} is not defined by {lacking.source} "
                        f"(its roles: {defined})",
                    )  # fmt: skip
                )
        elif not -shortest <= p < shortest:
            problems.append(
                (i, f"task.noise.positions: position {p} is outside the shortest prompt "
                    f"({shortest} tokens, positions 0..{shortest - 1} or -{shortest}..-1)")
            )  # fmt: skip
    if problems:
        from causal_mi.spec.yaml_source import load_yaml, locate

        root = load_yaml(hyp_path)
        at = ("task", "noise", "positions")
        single = not isinstance(noise.positions, list)
        raise InputError(
            [
                Problem(locate(root, at if single else (*at, i), str(hyp_path)), m)
                for i, m in problems
            ]
        )

    def resolved(e: Example) -> tuple[int, ...]:
        out: list[int] = []
        for p in positions:
            out.extend(e.roles_of("clean")[p] if isinstance(p, str) else (p,))
        return tuple(out)

    return tuple(
        dataclasses.replace(
            e,
            corrupt=e.clean,
            corrupt_roles=e.roles,
            noise=Noise(resolved(e), noise.scale, noise.seed, index=i),
        )
        for i, e in enumerate(examples)
    )
