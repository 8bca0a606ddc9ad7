"""Compare a committed run's REPORT.md with the report regenerated from the committed files, number by number."""

import re
from pathlib import Path

NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def report_numbers(text):
    """Every number in a report, in order, leaving out quoted example text (lines starting with '- *')."""
    lines = [line for line in text.splitlines() if not line.startswith("- *")]
    return NUMBER.findall("\n".join(lines))


def report_mismatches(lib, folder):
    """Lines describing where the committed REPORT.md and the regenerated one differ in their numbers."""
    committed = (Path(folder) / "REPORT.md").read_text()
    regenerated = lib.build_report(folder)
    mine, theirs = report_numbers(committed), report_numbers(regenerated)
    if mine == theirs:
        return []
    problems = [f"{len(mine)} numbers in REPORT.md, {len(theirs)} regenerated from the files"]
    problems += [f"#{i}: report {a} vs files {b}" for i, (a, b) in enumerate(zip(mine, theirs)) if a != b][:20]
    return problems
