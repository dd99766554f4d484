"""The reliability suite's table: each case adds a row, the session prints them at the end.

Rows go to JSON files in ``$RELIABILITY_TALLY`` (a folder the root conftest makes once per
session, before pytest-xdist starts its workers, so every worker writes to the same place);
:func:`table` reads them back. ``RELIABILITY_LONG=1`` (set by ``make chaos``) selects the long
form of every case; the short form runs in ``make test``.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ENV = "RELIABILITY_TALLY"
LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0")


def pick(short: int, long: int) -> int:
    return long if LONG else short


@dataclass(frozen=True)
class Row:
    case: str
    tried: int
    survived: int
    records_lost: int = 0
    duplicate_deployments: int = 0
    secrets_leaked: int = 0


def record(row: Row) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    path = Path(folder) / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(asdict(row)))


def rows(folder: Path) -> list[Row]:
    return sorted((Row(**json.loads(p.read_text())) for p in folder.glob("*.json")),
                  key=lambda r: r.case)


def table(found: list[Row]) -> str:
    head = ("case", "tried", "survived", "records lost", "duplicate deployments",
            "secrets leaked")
    lines = [head] + [(r.case, str(r.tried), str(r.survived), str(r.records_lost),
                       str(r.duplicate_deployments), str(r.secrets_leaked)) for r in found]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
           for line in lines]
    out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(out)
