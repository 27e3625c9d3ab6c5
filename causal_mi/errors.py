"""Error types. Every user-facing error names the file, line and column, and teaches the fix.

Exit codes (SPEC 6): 0 all claims hold, 1 a claim failed, 2 a file or model could not be
loaded (nothing measured), 3 internal error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


@dataclass(frozen=True)
class Location:
    """A place in a user file; line and column are 1-based (0 = unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col or 1}"


@dataclass(frozen=True)
class Problem:
    """One error found in a user file."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class CausalMIError(Exception):
    """Base class of every error causal-mi raises on purpose."""

    exit_code = EXIT_INTERNAL


class InputError(CausalMIError):
    """Bad user input (hypothesis file, task file, model reference). Exit code 2.

    Holds every problem found, so a user fixes them all in one pass.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Iterable[Problem] | Problem | str, *, file: str = "<input>"):
        if isinstance(problems, str):
            problems = [Problem(Location(file), problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = "1 error" if n == 1 else f"{n} errors"
        return f"{head}:\n" + "\n".join(f"  {p}" for p in self.problems)


class OptionError(CausalMIError):
    """A bad command-line option or API argument (exit code 2, nothing measured)."""

    exit_code = EXIT_BAD_INPUT


class ModelLoadError(InputError):
    """A model reference could not be resolved or loaded. Exit code 2."""


def did_you_mean(name: str, options: Iterable[str], *, limit: int = 8) -> str:
    """A hint naming the nearest valid option and listing the valid ones.

    >>> did_you_mean("L1H9", ["L1H0", "L1H3"])
    'did you mean L1H3? valid: L1H0, L1H3'
    >>> did_you_mean("x", [])
    'there are none to choose from'
    """
    opts = sorted(set(options))
    if not opts:
        return "there are none to choose from"
    close = difflib.get_close_matches(name, opts, n=1, cutoff=0.5)
    shown = ", ".join(opts[:limit]) + (", ..." if len(opts) > limit else "")
    if close:
        return f"did you mean {close[0]}? valid: {shown}"
    return f"valid: {shown}"
