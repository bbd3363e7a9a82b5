"""What a database stores and gives back unchanged, on SQLite as on PostgreSQL.

PostgreSQL text cannot hold NUL; UTF-8 cannot encode an unpaired surrogate, which JSON's
`\\udfff` escape can still carry in; JSON has no NaN or Infinity, which Python's parser
accepts (and `1e400` becomes infinity). Stored, each would break every later read of it or
come back changed (SQLite keeps NaN as null), so they are refused where they come in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

NUL_REFUSED = "must not contain NUL characters"
SURROGATE_REFUSED = "must not contain unpaired surrogates (U+D800 to U+DFFF)"
NOT_FINITE = "must be a finite number, not NaN or Infinity"
MAX_DEPTH = 32

Path = tuple[str | int, ...]


def text_fault(text: str) -> str | None:
    """Why `text` cannot be stored as it is, or None when it can."""
    if "\x00" in text:
        return NUL_REFUSED
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_REFUSED
    return None


@dataclass(frozen=True, slots=True)
class Unstorable:
    """A value inside a JSON document that cannot be stored as it is, located by its path
    (object keys and list indexes) from the document; an empty path is the document."""

    path: Path
    detail: str


def json_faults(document: object, max_depth: int = MAX_DEPTH) -> Iterator[Unstorable]:
    """Every value of a parsed JSON document that would not read back as it was sent.

    A document nested deeper than `max_depth` containers (the document being the first) is
    refused where it goes too deep: JSON encoders stop at some depth, and a deep enough
    one breaks every later read. Walked with a stack, so no input can exhaust recursion.
    """
    stack: list[tuple[Path, object, int]] = [((), document, 1)]
    while stack:  # siblings pushed last to first, so faults come in document order
        path, value, depth = stack.pop()
        if isinstance(value, dict | list) and depth > max_depth:
            yield Unstorable(path, f"is nested more than {max_depth} deep")
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                fault = text_fault(key)
                if fault is not None:  # at its object: a pointer could not always quote the key
                    yield Unstorable(path, f"has a key that {fault}")
                else:
                    stack.append(((*path, key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend(((*path, i), value[i], depth + 1) for i in range(len(value) - 1, -1, -1))
        elif isinstance(value, str):
            fault = text_fault(value)
            if fault is not None:
                yield Unstorable(path, fault)
        elif isinstance(value, float) and not math.isfinite(value):
            yield Unstorable(path, NOT_FINITE)
