"""Sentences every output shares, so the console, report.md and report.html say one thing."""

#: what "N observed runs and M interventional runs over k parent(s)" in a property's line counts
PROPERTY_RUNS_HELP = (
    "Observed runs: every example's clean and corrupt prompt. Interventional runs: for each "
    "combination of the parents' states (the variables of earlier components the formula "
    "reads, each set off by ablating its component or kept on at its clean value), the "
    "examples on which that combination can be realised (keeping a parent on needs it on "
    "in the clean run). k parents give 2^k combinations, so at most 2^k x n runs."
)
