"""The list query language of DCImanager 6: `where=`, `orderby=` and `limit=`.

`where` grammar (keywords case-insensitive, precedence NOT > AND > OR):

    expr       := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" expr ")" | comparison
    comparison := field ("EQ" | "NE" | "CP") literal | field "IS" ["NOT"] "null"
    literal    := 'quoted string' | number | true | false
    field      := name ("." name)*          e.g. owner_email, operation.status, ip.name

String literals are single-quoted. Inside one, a backslash takes the next character
literally (`\\'` is a quote, `\\\\` a backslash) and a doubled quote `''` is one quote, as in
MySQL, which backs the panel. A client that escapes `\\` as `\\\\` and `'` as `\\'` (or `''`) can
therefore never end a literal early. `CP` is SQL LIKE on the unescaped text: `%` matches any
run of characters, `_` exactly one, and a backslash makes the next `%`, `_` or `\\` literal
(so a literal `%` is written `\\\\%` in the filter text). String comparisons are
case-insensitive (the panel's MySQL collation); numbers compare numerically, true/false as
1/0. Evaluation uses SQL three-valued logic: any comparison with a null field is unknown,
NOT unknown is unknown, and only rows whose filter is true are returned. A field holding a
list (e.g. `ip` entries, `roles` arrays) matches when any of its elements matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Comparison",
    "IsNull",
    "Junction",
    "Negation",
    "OrderKey",
    "Predicate",
    "QuerySyntaxError",
    "apply_orderby",
    "parse_limit",
    "parse_orderby",
    "parse_where",
]

# SQL three-valued logic: True, False, or None for "unknown".
Truth = bool | None
Literal = str | int | float | bool


class QuerySyntaxError(ValueError):
    """A malformed where/orderby/limit; the panel answers 400 code 1000."""


# --- tokenizer -------------------------------------------------------------------------

_KEYWORDS = frozenset({"AND", "OR", "NOT", "EQ", "NE", "CP", "IS", "NULL", "TRUE", "FALSE"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "string", "number", "keyword", "name", "end"
    text: str
    position: int
    value: Literal | None = None


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Reads a quoted literal starting at the opening quote; returns (value, next index)."""
    chars: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text):
                break
            chars.append(text[index + 1])
            index += 2
        elif char == "'":
            if index + 1 < len(text) and text[index + 1] == "'":
                chars.append("'")
                index += 2
            else:
                return "".join(chars), index + 1
        else:
            chars.append(char)
            index += 1
    raise QuerySyntaxError(f"unterminated string literal at {start}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif char in "()":
            tokens.append(_Token(char, char, index))
            index += 1
        elif char == "'":
            value, end = _read_string(text, index)
            tokens.append(_Token("string", text[index:end], index, value))
            index = end
        elif match := _NUMBER.match(text, index):
            literal = match.group()
            number: int | float = float(literal) if "." in literal else int(literal)
            tokens.append(_Token("number", literal, index, number))
            index = match.end()
        elif match := _NAME.match(text, index):
            word = match.group()
            if word.upper() in _KEYWORDS:
                tokens.append(_Token("keyword", word.upper(), index))
            else:
                tokens.append(_Token("name", word, index))
            index = match.end()
        else:
            raise QuerySyntaxError(f"unexpected character {char!r} at {index}")
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --- evaluation helpers ----------------------------------------------------------------


def _leaf_values(record: Any, path: Sequence[str]) -> list[Any]:
    """Every value at `path`, walking into lists (a list field matches element-wise)."""
    if isinstance(record, list):
        values: list[Any] = []
        for element in record:
            values.extend(_leaf_values(element, path))
        return values
    if not path:
        return [record]
    if not isinstance(record, dict):
        return []
    return _leaf_values(record.get(path[0]), path[1:])


def _field_reader(path: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    """Reads a field: a scalar as itself, anything list-like as the list of its leaves."""
    if len(path) == 1:
        name = path[0]

        def top_level(record: dict[str, Any]) -> Any:
            value = record.get(name)
            return _leaf_values(value, ()) if isinstance(value, list) else value

        return top_level
    return lambda record: _leaf_values(record, path)


def _like_pattern(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _equality(literal: Literal) -> Callable[[Any], Truth]:
    """`value EQ literal` for one scalar: strings case-insensitively, numbers numerically."""
    if isinstance(literal, str):
        text = literal.casefold()
        try:
            number: float | None = float(literal)
        except ValueError:
            number = None
    else:
        text = str(literal).casefold()
        number = float(literal)

    def equal(value: Any) -> Truth:
        if value is None:
            return None
        if isinstance(value, str):
            return value.casefold() == text
        if isinstance(value, bool | int | float):
            return number is not None and float(value) == number
        return None  # objects are not comparable with a literal

    return equal


def _comparator(operator: str, literal: Literal) -> Callable[[Any], Truth]:
    if operator == "EQ":
        return _equality(literal)
    if operator == "NE":
        equal = _equality(literal)

        def unequal(value: Any) -> Truth:
            result = equal(value)
            return None if result is None else not result

        return unequal
    like = _like_pattern(str(literal))

    def matches_like(value: Any) -> Truth:
        if value is None or isinstance(value, dict | list):
            return None
        return like.fullmatch(str(value)) is not None

    return matches_like


def _any_truth(results: Iterable[Truth]) -> Truth:
    """OR over a list field's elements: true if any is true, unknown if all unknown."""
    seen_false = False
    for result in results:
        if result:
            return True
        if result is False:
            seen_false = True
    return False if seen_false else None


# --- the syntax tree -------------------------------------------------------------------
# Each node compiles itself into one closure when built: a 10,000-server list is filtered
# per request, so evaluation avoids per-record method dispatch.

Test = Callable[[dict[str, Any]], Truth]


class Predicate:
    """A parsed filter. `matches` is true only when the filter is TRUE (not unknown)."""

    def __init__(self, test: Test) -> None:
        self.evaluate: Test = test

    def matches(self, record: dict[str, Any]) -> bool:
        return self.evaluate(record) is True


class Comparison(Predicate):
    """`field EQ|NE|CP literal`, with the literal's comparison prepared once."""

    def __init__(self, field: tuple[str, ...], operator: str, literal: Literal) -> None:
        self.field = field
        self.operator = operator
        self.literal = literal
        read = _field_reader(field)
        compare = _comparator(operator, literal)

        def test(record: dict[str, Any]) -> Truth:
            value = read(record)
            if isinstance(value, list):
                return _any_truth(compare(element) for element in value)
            return compare(value)

        super().__init__(test)

    def __repr__(self) -> str:
        return f"Comparison({'.'.join(self.field)} {self.operator} {self.literal!r})"


class IsNull(Predicate):
    def __init__(self, field: tuple[str, ...], negated: bool = False) -> None:
        self.field = field
        self.negated = negated
        read = _field_reader(field)

        def test(record: dict[str, Any]) -> Truth:
            value = read(record)
            is_null = all(v is None for v in value) if isinstance(value, list) else value is None
            return is_null != negated

        super().__init__(test)

    def __repr__(self) -> str:
        return f"IsNull({'.'.join(self.field)}, negated={self.negated})"


class Negation(Predicate):
    def __init__(self, operand: Predicate) -> None:
        self.operand = operand
        inner = operand.evaluate

        def test(record: dict[str, Any]) -> Truth:
            result = inner(record)
            return None if result is None else not result

        super().__init__(test)

    def __repr__(self) -> str:
        return f"Negation({self.operand!r})"


class Junction(Predicate):
    """AND / OR with SQL three-valued logic."""

    def __init__(self, operator: str, operands: Sequence[Predicate]) -> None:
        self.operator = operator
        self.operands = tuple(operands)
        tests = tuple(operand.evaluate for operand in self.operands)
        decisive = operator == "OR"  # OR stops at True, AND at False

        def test(record: dict[str, Any]) -> Truth:
            unknown = False
            for each in tests:
                result = each(record)
                if result is None:
                    unknown = True
                elif result is decisive:
                    return decisive
            return None if unknown else not decisive

        super().__init__(test)

    def __repr__(self) -> str:
        return f"Junction({self.operator}, {list(self.operands)!r})"


class _Parser:
    def __init__(self, text: str, fields: frozenset[str] | None) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.fields = fields

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _at_keyword(self, *words: str) -> bool:
        return self.current.kind == "keyword" and self.current.text in words

    def _fail(self, expected: str) -> QuerySyntaxError:
        token = self.current
        found = token.text or "end of filter"
        return QuerySyntaxError(f"expected {expected} at {token.position}, found {found!r}")

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.current.kind != "end":
            raise self._fail("AND, OR or end of filter")
        return predicate

    def _or(self) -> Predicate:
        operands = [self._and()]
        while self._at_keyword("OR"):
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Junction("OR", tuple(operands))

    def _and(self) -> Predicate:
        operands = [self._not()]
        while self._at_keyword("AND"):
            self._advance()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else Junction("AND", tuple(operands))

    def _not(self) -> Predicate:
        if self._at_keyword("NOT"):
            self._advance()
            return Negation(self._not())
        if self.current.kind == "(":
            self._advance()
            inner = self._or()
            if self.current.kind != ")":
                raise self._fail("')'")
            self._advance()
            return inner
        return self._comparison()

    def _field(self) -> tuple[str, ...]:
        if self.current.kind != "name":
            raise self._fail("a field name")
        token = self._advance()
        path = tuple(token.text.split("."))
        if self.fields is not None and path[0] not in self.fields:
            raise QuerySyntaxError(f"unknown field {token.text!r} at {token.position}")
        return path

    def _comparison(self) -> Predicate:
        field = self._field()
        if self._at_keyword("IS"):
            self._advance()
            negated = False
            if self._at_keyword("NOT"):
                self._advance()
                negated = True
            if not self._at_keyword("NULL"):
                raise self._fail("null")
            self._advance()
            return IsNull(field, negated)
        if not self._at_keyword("EQ", "NE", "CP"):
            raise self._fail("EQ, NE, CP or IS")
        operator = self._advance().text
        return Comparison(field, operator, self._literal(operator))

    def _literal(self, operator: str) -> Literal:
        token = self.current
        if token.kind in ("string", "number") and token.value is not None:
            self._advance()
            return token.value
        if self._at_keyword("TRUE", "FALSE"):
            self._advance()
            return token.text == "TRUE"
        if self._at_keyword("NULL"):
            raise QuerySyntaxError(f"{operator} null at {token.position}: use IS null")
        raise self._fail("a quoted string, a number, true or false")


def parse_where(text: str, fields: Iterable[str] | None = None) -> Predicate | None:
    """Parses a filter; None for an empty one. `fields` limits the top-level field names."""
    if not text.strip():
        return None
    return _Parser(text, frozenset(fields) if fields is not None else None).parse()


# --- orderby and limit -----------------------------------------------------------------


@dataclass(frozen=True)
class OrderKey:
    field: tuple[str, ...]
    descending: bool = False


def parse_orderby(text: str, fields: Iterable[str] | None = None) -> list[OrderKey]:
    """`<field> [asc|desc]`, several separated by commas."""
    allowed = frozenset(fields) if fields is not None else None
    keys: list[OrderKey] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            if text.strip():
                raise QuerySyntaxError(f"empty orderby term in {text!r}")
            continue
        if len(words) > 2 or not _NAME.fullmatch(words[0]):
            raise QuerySyntaxError(f"malformed orderby term {part.strip()!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise QuerySyntaxError(f"orderby direction must be asc or desc, got {words[1]!r}")
        path = tuple(words[0].split("."))
        if allowed is not None and path[0] not in allowed:
            raise QuerySyntaxError(f"unknown orderby field {words[0]!r}")
        keys.append(OrderKey(path, direction == "desc"))
    return keys


def _sort_key(leaf: Any) -> tuple[int, Any]:
    """SQL order: nulls first, then numbers, then strings; objects last."""
    if leaf is None:
        return (0, 0)
    if isinstance(leaf, bool | int | float):
        return (1, float(leaf))
    if isinstance(leaf, str):
        return (2, leaf.casefold())
    return (3, repr(leaf))


def apply_orderby(records: list[dict[str, Any]], keys: Sequence[OrderKey]) -> list[dict[str, Any]]:
    """Stable multi-key sort (applied from the last key to the first)."""
    ordered = list(records)
    for key in reversed(keys):
        ordered.sort(key=_record_key(key.field), reverse=key.descending)
    return ordered


def _record_key(path: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    def key(record: dict[str, Any]) -> tuple[int, Any]:
        values = _leaf_values(record, path)
        return _sort_key(values[0] if values else None)

    return key


def parse_limit(text: str) -> tuple[int, int | None]:
    """`<offset>,<count>` or `<count>`; returns (offset, count or None for "all")."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise QuerySyntaxError(f"limit must be '<offset>,<count>' or '<count>', got {text!r}")
    if len(parts) == 1:
        return 0, int(parts[0])
    return int(parts[0]), int(parts[1])
