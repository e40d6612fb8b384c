"""SQL execution accuracy against a real SQLite database.

Both the gold and the predicted query run on the same read-only database; the prediction is
right when the result sets are equal (as ordered lists when the gold query has a top-level
ORDER BY, else as multisets). SQL that fails to run, runs too long, or writes is wrong.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from expertpm._errors import UserError

from .metrics import Score, strip_fences

MAX_ROWS = 10_000


class EvalDatabaseError(UserError):
    """The evaluation database is missing or cannot be opened."""


def open_database(path: Path) -> sqlite3.Connection:
    """A read-only connection: a `.sqlite`/`.db` file opened read-only, or a `.sql` script
    (schema + rows) loaded into memory."""
    path = Path(path)
    if not path.is_file():
        raise EvalDatabaseError("evaluation database not found", where=str(path),
                                hint="set eval.options.database to a .sqlite file or a .sql script")
    try:
        if path.suffix == ".sql":
            conn = sqlite3.connect(":memory:")
            conn.executescript(path.read_text(encoding="utf-8"))
        else:
            conn = sqlite3.connect(f"file:{path.absolute()}?mode=ro", uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise EvalDatabaseError(f"cannot open the database: {exc}", where=str(path)) from exc
    conn.execute("PRAGMA query_only = ON")
    return conn


def run_query(conn: sqlite3.Connection, sql: str, *, timeout_s: float = 2.0) -> list[tuple] | None:
    """Rows of `sql`, or None when it is not one valid read-only statement finishing in time."""
    sql = strip_fences(sql).strip().rstrip(";").strip()
    if not sql:
        return None
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    try:
        rows = conn.execute(sql).fetchmany(MAX_ROWS + 1)
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError):
        return None
    finally:
        conn.set_progress_handler(None, 0)
    return [tuple(_cell(v) for v in row) for row in rows]


def _cell(value):
    return round(value, 6) if isinstance(value, float) else value


def _ordered(sql: str) -> bool:
    """Whether a query's outermost SELECT has ORDER BY (parentheses hide inner ones)."""
    depth, outer = 0, []
    for ch in re.sub(r"'(?:[^']|'')*'", "''", sql):
        depth += ch == "("
        depth -= ch == ")"
        outer.append(ch if depth == 0 else " ")
    return re.search(r"\border\s+by\b", "".join(outer), re.I) is not None


def same_result(gold_rows: list[tuple], pred_rows: list[tuple], ordered: bool) -> bool:
    if ordered:
        return gold_rows == pred_rows
    return Counter(gold_rows) == Counter(pred_rows)


def sql_execution(predictions: Sequence[str], golds: Sequence[str], database: Path) -> Score:
    conn = open_database(database)
    try:
        items, valid = [], []
        for pred, gold in zip(predictions, golds):
            gold_rows = run_query(conn, gold)
            if gold_rows is None:
                raise EvalDatabaseError(f"a gold query does not run on the database: {gold!r}",
                                        where=str(database), hint="fix the eval set or the database")
            pred_rows = run_query(conn, pred)
            valid.append(pred_rows is not None)
            items.append(pred_rows is not None and same_result(gold_rows, pred_rows, _ordered(gold)))
    finally:
        conn.close()
    n = len(items)
    return Score(sum(items) / n if n else 0.0, {"valid_sql": sum(valid) / n if n else 0.0}, items)
