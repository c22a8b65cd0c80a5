"""The `where=` filter of DCImanager 6 lists, built from parts that cannot be widened.

Grammar (spec "Lists and queries"): comparisons `field EQ value`, `field NE value`,
`field CP 'pattern'` (LIKE: `%` any run, `_` one character), `field IS null`, joined by
`AND` / `OR`, negated by `NOT`, grouped by parentheses; strings are single-quoted literals.

Escaping rule (the simulator parses exactly this):
- inside a string literal a single quote is written twice: `O'Brien` -> `'O''Brien'`
  (the SQL-standard rule the spec's SQL-like syntax implies);
- a backslash is refused, not escaped: some SQL dialects treat `\\'` as an escaped quote,
  and a value must mean the same thing to every parser a panel might use;
- control characters (and Unicode line/paragraph separators) are refused;
- integers and booleans are written as bare literals (`3`, `true`); nothing else is accepted.
Keywords, `%`, `(` and `)` inside a quoted literal are plain text, so an e-mail containing
them compares as itself. Field names must be identifiers. Every compound operand is
parenthesised, so the meaning never depends on the panel's operator precedence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dci6_processing.errors import ErrorType, ModuleError

Value = str | int | bool
_Kind = Literal["atom", "AND", "OR", "NOT"]

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class UnsafeFilterValue(ModuleError):
    """A value that could change a filter's meaning on some parser: refused, never sent."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        shown = value.encode("unicode_escape").decode("ascii")[:120]
        super().__init__(ErrorType.invalid_param, object=field, value=shown, detail=reason)


def quote(field: str, value: str) -> str:
    """`value` as a single-quoted literal, or UnsafeFilterValue (see the module docstring)."""
    if "\\" in value:
        raise UnsafeFilterValue(field, value, "backslash in a filter value")
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise UnsafeFilterValue(field, value, "control character in a filter value")
    return "'" + value.replace("'", "''") + "'"


def literal(field: str, value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(field, value)
    raise TypeError(f"filter value for {field} must be str, int or bool, not {type(value)}")


def _field(name: str) -> str:
    if not _FIELD.fullmatch(name):
        raise ValueError(f"not a field name: {name!r}")
    return name


@dataclass(frozen=True)
class Where:
    """An immutable filter; `str(where)` is the text for the `where=` parameter."""

    text: str
    kind: _Kind = "atom"

    @classmethod
    def eq(cls, field: str, value: Value) -> Where:
        return cls(f"{_field(field)} EQ {literal(field, value)}")

    @classmethod
    def ne(cls, field: str, value: Value) -> Where:
        return cls(f"{_field(field)} NE {literal(field, value)}")

    @classmethod
    def cp(cls, field: str, pattern: str) -> Where:
        """LIKE: `%` and `_` in `pattern` are wildcards, so never pass user input here."""
        return cls(f"{_field(field)} CP {quote(field, pattern)}")

    @classmethod
    def is_null(cls, field: str) -> Where:
        # parenthesised as in the spec's own example
        return cls(f"({_field(field)} IS null)")

    @classmethod
    def not_(cls, inner: Where) -> Where:
        return cls(f"NOT ({inner.text})", "NOT")

    @classmethod
    def all(cls, parts: Iterable[Where | None]) -> Where | None:
        """AND of the given parts, skipping None; None when nothing is left."""
        return cls._join("AND", parts)

    @classmethod
    def any(cls, parts: Iterable[Where | None]) -> Where | None:
        """OR of the given parts, skipping None; None when nothing is left."""
        return cls._join("OR", parts)

    @classmethod
    def _join(cls, op: Literal["AND", "OR"], parts: Iterable[Where | None]) -> Where | None:
        present = [part for part in parts if part is not None]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        rendered = [part.text if part.kind in ("atom", op) else f"({part.text})"
                    for part in present]
        return cls(f" {op} ".join(rendered), op)

    def __and__(self, other: Where) -> Where:
        joined = Where._join("AND", (self, other))
        assert joined is not None  # two parts in, one out
        return joined

    def __or__(self, other: Where) -> Where:
        joined = Where._join("OR", (self, other))
        assert joined is not None  # two parts in, one out
        return joined

    def __invert__(self) -> Where:
        return Where.not_(self)

    def __str__(self) -> str:
        return self.text
