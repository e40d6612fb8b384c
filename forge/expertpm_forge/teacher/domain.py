"""Reading a domain out of text for the stand-in teacher: SQL DDL and INSERTs, Cypher patterns,
value lines (`table.column: a, b, c` / `TYPE: a, b`), definitions and sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["SqlColumn", "SqlTable", "parse_sql_schema", "parse_sql_values", "GraphSchema", "parse_graph",
           "value_lines", "sentences", "humanize", "plural", "singular", "split_top_level", "literal_values",
           "frequent_nouns"]

NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUME", "DECI")
_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"`\[]?(\w+)[\"`\]]?\s*\((.*?)\)\s*;", re.I | re.S)
_INSERT = re.compile(r"INSERT\s+INTO\s+[\"`]?(\w+)[\"`]?\s*(?:\(([^)]*)\))?\s*VALUES\s*(.*?);", re.I | re.S)
_REFERENCES = re.compile(r"REFERENCES\s+[\"`]?(\w+)[\"`]?\s*\(\s*[\"`]?(\w+)", re.I)
_VALUE_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:\s*(.+?)\s*$", re.M)
_NODE = re.compile(r"\(\s*\w*\s*:\s*(\w+)\s*(\{[^}]*\})?\s*\)")
_REL = re.compile(r"\(\s*\w*\s*:\s*(\w+)[^)]*\)\s*-\s*\[\s*\w*\s*:\s*(\w+)[^\]]*\]\s*->\s*\(\s*\w*\s*:\s*(\w+)[^)]*\)")
_GRAPH_TYPES = {"STRING", "INTEGER", "INT", "FLOAT", "BOOLEAN", "DATE", "NUMBER", "TEXT"}
_STOP = set("""the a an and or of to in on for with by at from this that these those is are was were be been
it its as into over under about after before than then there their they them you your we our not no can will
would should could may might each every any all some more most other such only also very just""".split())


def humanize(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").lower().strip()


def plural(word: str) -> str:
    if word.endswith("s"):
        return word
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("x", "ch", "sh")) else "s")


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def literal_values(text: str) -> list:
    """SQL/Cypher literals: 'text' (with '' escapes), numbers, NULL/true/false."""
    values = []
    for part in split_top_level(text):
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            values.append(part[1:-1].replace(part[0] * 2, part[0]))
        elif re.fullmatch(r"-?\d+", part):
            values.append(int(part))
        elif re.fullmatch(r"-?\d*\.\d+", part):
            values.append(float(part))
        else:
            values.append(None)
    return values


@dataclass(slots=True)
class SqlColumn:
    name: str
    type: str
    primary: bool = False
    references: tuple[str, str] | None = None  # (table, column)

    @property
    def numeric(self) -> bool:
        return self.type.upper().startswith(NUMERIC_TYPES)


@dataclass(slots=True)
class SqlTable:
    name: str
    columns: list[SqlColumn] = field(default_factory=list)

    def column(self, name: str) -> SqlColumn | None:
        return next((c for c in self.columns if c.name == name), None)


def parse_sql_schema(text: str) -> dict[str, SqlTable]:
    tables: dict[str, SqlTable] = {}
    for name, body in _CREATE.findall(text):
        table = SqlTable(name)
        for item in split_top_level(body):
            words = item.split()
            head = words[0].upper() if words else ""
            if head in ("PRIMARY", "FOREIGN", "UNIQUE", "CHECK", "CONSTRAINT"):
                fk = re.match(r"FOREIGN\s+KEY\s*\(\s*[\"`]?(\w+)", item, re.I)
                ref = _REFERENCES.search(item)
                if fk and ref and table.column(fk.group(1)):
                    table.column(fk.group(1)).references = (ref.group(1), ref.group(2))
                pk = re.match(r"PRIMARY\s+KEY\s*\(\s*[\"`]?(\w+)", item, re.I)
                if pk and table.column(pk.group(1)):
                    table.column(pk.group(1)).primary = True
                continue
            if len(words) < 1:
                continue
            ref = _REFERENCES.search(item)
            table.columns.append(SqlColumn(words[0].strip("\"`[]"), words[1] if len(words) > 1 else "TEXT",
                                           "PRIMARY KEY" in item.upper(),
                                           (ref.group(1), ref.group(2)) if ref else None))
        tables[name] = table
    return tables


def parse_sql_values(text: str, tables: dict[str, SqlTable]) -> dict[tuple[str, str], list]:
    """Sample values per (table, column) from INSERT statements and `table.column: a, b` lines."""
    values: dict[tuple[str, str], list] = {}
    for name, cols, rows in _INSERT.findall(text):
        table = tables.get(name)
        if table is None:
            continue
        names = [c.strip(" \"`") for c in cols.split(",")] if cols.strip() else [c.name for c in table.columns]
        for row in re.findall(r"\(((?:[^()']|'(?:[^']|'')*')*)\)", rows):
            for col, value in zip(names, literal_values(row)):
                if value is not None and value not in values.setdefault((name, col), []):
                    values[(name, col)].append(value)
    for key, items in value_lines(text).items():
        if "." in key:
            name, col = key.split(".", 1)
            if name in tables and tables[name].column(col):
                numeric = tables[name].column(col).numeric
                for item in items:
                    item = int(item) if numeric and re.fullmatch(r"-?\d+", item) else item
                    if item not in values.setdefault((name, col), []):
                        values[(name, col)].append(item)
    return values


def value_lines(text: str) -> dict[str, list[str]]:
    """`key: a, b, c` lines → {key: [a, b, c]} (a key may repeat; values accumulate)."""
    found: dict[str, list[str]] = {}
    for key, rest in _VALUE_LINE.findall(text):
        items = [v.strip().strip("'\"") for v in split_top_level(rest)]
        if len(items) >= 1 and all(items) and not rest.rstrip().endswith((".", "?", "!")):
            found.setdefault(key, []).extend(i for i in items if i not in found.get(key, []))
    return found


@dataclass(slots=True)
class GraphSchema:
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # label -> {property: type}
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (from label, TYPE, to label)
    values: dict[tuple[str, str], list] = field(default_factory=dict)  # (label, property) -> samples


def parse_graph(text: str) -> GraphSchema:
    graph = GraphSchema()
    for label, props in _NODE.findall(text):
        known = graph.labels.setdefault(label, {})
        for item in split_top_level(props.strip("{}")) if props else []:
            key, _, raw = item.partition(":")
            key, raw = key.strip(), raw.strip()
            if not key:
                continue
            if raw.upper() in _GRAPH_TYPES:
                known.setdefault(key, raw.upper())
                continue
            (value,) = literal_values(raw) or [None]
            if value is None:
                continue
            known.setdefault(key, "STRING" if isinstance(value, str) else "INTEGER" if isinstance(value, int) else "FLOAT")
            if value not in graph.values.setdefault((label, key), []):
                graph.values[(label, key)].append(value)
    for rel in _REL.findall(text):
        if rel not in graph.relations:
            graph.relations.append(rel)
    for key, items in value_lines(text).items():
        label, _, prop = key.partition(".")
        if prop and label in graph.labels:
            numeric = graph.labels[label].get(prop) in ("INTEGER", "INT", "FLOAT", "NUMBER")
            for item in items:
                item = int(item) if numeric and re.fullmatch(r"-?\d+", item) else item
                if item not in graph.values.setdefault((label, prop), []):
                    graph.values[(label, prop)].append(item)
    return graph


def sentences(text: str) -> list[str]:
    """Prose sentences (markup lines and code dropped)."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        if re.match(r"^\s*(```|CREATE|INSERT|MATCH|\{|\[|\||#)", block, re.I):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(block.split())):
            if 3 <= len(sentence.split()) <= 40 and sentence[-1:] in ".!?":
                out.append(sentence.lstrip("-*> ").strip())
    return out


def frequent_nouns(text: str, limit: int = 12) -> list[str]:
    """Words that follow 'the'/'my'/'this' most often: a cheap guess at the domain's nouns."""
    counts: dict[str, int] = {}
    for word in re.findall(r"\b(?:the|my|this|your|our)\s+([a-z][a-z-]{2,})\b", text.lower()):
        if word not in _STOP:
            counts[word] = counts.get(word, 0) + 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]
