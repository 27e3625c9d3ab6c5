"""Checks of a hypothesis' positions against its tokenized task (before anything runs).

Integer positions must lie inside the shortest prompt (clean or corrupt); every role a site
or ``task.read_at`` names must be defined, as one token, by both prompts of every example;
and when some clean and corrupt prompts differ in length, every patched site must name its
positions (a patch over all positions cannot line up prompts of different lengths).
"""

from __future__ import annotations

from typing import Any

from causal_mi.errors import Location, Problem
from causal_mi.spec.sites import Kind, Role, format_site
from causal_mi.tasks.base import END, Example, Task


def row_location(hyp: Any, ex: Example) -> Location:
    """Where an example came from: its task file's line, or the hypothesis' task."""
    spec = hyp.spec.task
    head, _, line = ex.source.rpartition(":")
    if spec.file is not None and line.isdigit():
        from causal_mi.tasks.registry import task_file

        return Location(str(task_file(hyp.spec, hyp.path)), int(line), 1)
    return hyp.task_location


def role_problems(hyp: Any, task: Task, role: str, used_by: str, where: Location) -> list[Problem]:
    """Problems with ``role`` (named by ``used_by`` at ``where``) in the task's examples."""
    known = sorted(task.roles())
    for ex in task.examples:
        for prompt in ("clean", "corrupt"):
            roles = ex.roles_of(prompt)
            if role not in roles:
                if not any(role in e.roles_of(p) for e in task.examples for p in ("clean",)):
                    return [
                        Problem(
                            where,
                            f"{used_by}: unknown role '{role}'; the task defines: "
                            f"{', '.join(known)} (add it to each row's roles or template)",
                        )
                    ]
                return [
                    Problem(
                        row_location(hyp, ex),
                        f"{ex.source}: the {prompt} prompt lacks role '{role}', used by "
                        f"{used_by} at {where}; this row defines: "
                        f"{', '.join(sorted(roles))}; give it '{role}' "
                        f"({'roles' if prompt == 'clean' else 'corrupt_roles'} or a "
                        "template placeholder)",
                    )
                ]
            if len(roles[role]) != 1:
                return [
                    Problem(
                        row_location(hyp, ex),
                        f"{ex.source}: role '{role}' covers {len(roles[role])} tokens of the "
                        f"{prompt} prompt; {used_by} at {where} needs a one-token role "
                        "(task.noise.positions may use a role of several tokens)",
                    )
                ]
    return []


def position_problems(hyp: Any, task: Task) -> list[Problem]:
    """Every problem with the hypothesis' positions and roles on this task."""
    if not task.examples:
        return []
    shortest = min(min(len(e.clean), len(e.corrupt)) for e in task.examples)
    problems: list[Problem] = []
    checked: set[tuple[str, str]] = set()
    for site, where in hyp.site_refs:
        for p in site.pos or ():
            if isinstance(p, Role):
                if (p.name, str(where)) not in checked:
                    checked.add((p.name, str(where)))
                    problems += role_problems(hyp, task, p.name, format_site(site), where)
            elif not -shortest <= p < shortest:
                problems.append(
                    Problem(
                        where,
                        f"{site}: position {p} is outside the shortest "
                        f"prompt ({shortest} tokens, positions 0..{shortest - 1} "
                        f"or -{shortest}..-1)",
                    )
                )
    read = hyp.spec.task.read_at
    if read and read != END:
        problems += role_problems(hyp, task, read, "task.read_at", hyp.task_location)
    whole_edges = hyp.edges and all(
        e.sender.pos is None and e.receiver.pos is None for e in hyp.edges
    )
    if whole_edges and task.not_plain():
        problems.append(
            Problem(
                hyp.edges[0].location,
                "edges make faithfulness a path-patching measurement, which runs on plain "
                f"examples only (one token length per pair, single-token answer and wrong, "
                f"the metric read at END); here {task.not_plain()}; drop the edges to "
                "measure at node level",
            )
        )
    uneven = next((e for e in task.examples if len(e.clean) != len(e.corrupt)), None)
    if uneven is not None:
        whole = sorted(
            {
                format_site(site)
                for site, _ in hyp.site_refs
                if site.pos is None and site.kind not in (Kind.EMBED, Kind.LOGITS)
            }
        )
        reasons = []
        if whole:
            reasons.append(f"{', '.join(whole)} patch all positions")
        if hyp.nodes and hyp.spec.ablation != "zero":
            reasons.append(
                "the file's nodes make faithfulness and complement ablate every other "
                "component at all positions"
            )
        if reasons:
            problems.append(
                Problem(
                    row_location(hyp, uneven),
                    f"clean prompt is {len(uneven.clean)} tokens but corrupt is "
                    f"{len(uneven.corrupt)}; a patch over all positions cannot line them up "
                    f"and {' and '.join(reasons)}: they must have the same length, or state "
                    "every node at roles or positions (e.g. {at: L1H3, pos: END}) with "
                    "ablation: zero (faithfulness then zeroes the other components)",
                )
            )
    return problems
