"""benchmarks/RESULTS.md's tables are well formed: every row has as many cells as its table's header
(30 rows of two other tables were once pasted into the 5-column "Frontiers by objective" table)."""

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip().strip("|")))  # an escaped \| is part of a cell


def test_every_table_row_has_its_headers_number_of_cells():
    header, in_code, bad = None, False, []
    for number, line in enumerate(RESULTS.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_code, header = not in_code, None
        elif in_code or not line.startswith("|"):
            header = None
        elif header is None:
            header = _cells(line)
        elif _cells(line) != header:
            bad.append(f"line {number}: {_cells(line)} cells under a {header}-cell header: {line[:60]}")
    assert not bad, "\n".join(bad)
