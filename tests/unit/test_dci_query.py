"""The where-filter builder: rendering, escaping, and "user input can never widen a query".

The properties parse the rendered text with a small reference parser of the spec's grammar
(SQL-standard doubled quotes) and, for the tokens, with a MySQL-style parser that also treats
backslash as an escape: a rendered filter must mean the same to both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dci6_processing.dci.query import UnsafeFilterValue, Where
from dci6_processing.errors import ErrorType

# --- a reference parser of the spec's where grammar -------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word, str, num, lparen, rparen
    text: str


def tokenize(text: str, *, backslash_escapes: bool = False) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char in "()":
            tokens.append(Token("lparen" if char == "(" else "rparen", char))
            pos += 1
        elif char == "'":
            pos += 1
            value: list[str] = []
            while True:
                if pos >= len(text):
                    raise SyntaxError("unterminated string")
                if backslash_escapes and text[pos] == "\\":
                    value.append(text[pos + 1])
                    pos += 2
                elif text[pos] == "'":
                    if text[pos + 1 : pos + 2] == "'":
                        value.append("'")
                        pos += 2
                    else:
                        pos += 1
                        break
                else:
                    value.append(text[pos])
                    pos += 1
            tokens.append(Token("str", "".join(value)))
        else:
            match = re.compile(r"-?\d+|[A-Za-z_][A-Za-z0-9_.]*").match(text, pos)
            if not match:
                raise SyntaxError(f"unexpected {char!r}")
            kind = "num" if match.group()[0] in "-0123456789" else "word"
            tokens.append(Token(kind, match.group()))
            pos = match.end()
    return tokens


Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> Predicate:
        expr = self.expr()
        if self.pos != len(self.tokens):
            raise SyntaxError(f"trailing tokens {self.tokens[self.pos:]}")
        return expr

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or token.kind != kind or (text is not None and token.text != text):
            raise SyntaxError(f"expected {kind} {text}, got {token}")
        self.pos += 1
        return token

    def expr(self) -> Predicate:
        parts = [self.term()]
        while (tok := self.peek()) and tok == Token("word", "OR"):
            self.pos += 1
            parts.append(self.term())
        return lambda r: any(p(r) for p in parts)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while (tok := self.peek()) and tok == Token("word", "AND"):
            self.pos += 1
            parts.append(self.factor())
        return lambda r: all(p(r) for p in parts)

    def factor(self) -> Predicate:
        tok = self.peek()
        if tok == Token("word", "NOT"):
            self.pos += 1
            inner = self.factor()
            return lambda r: not inner(r)
        if tok is not None and tok.kind == "lparen":
            self.pos += 1
            inner = self.expr()
            self.take("rparen")
            return inner
        field = self.take("word").text
        op = self.take("word").text
        if op == "IS":
            self.take("word", "null")
            return lambda r: r.get(field) is None
        value = self.literal()
        if op == "EQ":
            return lambda r: r.get(field) == value
        if op == "NE":
            return lambda r: r.get(field) != value
        if op == "CP":
            regex = re.compile("".join(".*" if c == "%" else re.escape(c) for c in value),
                               re.DOTALL)
            return lambda r: isinstance(r.get(field), str) and bool(regex.fullmatch(r[field]))
        raise SyntaxError(f"unknown operator {op}")

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise SyntaxError("missing value")
        self.pos += 1
        if tok.kind == "str":
            return tok.text
        if tok.kind == "num":
            return int(tok.text)
        if tok == Token("word", "true"):
            return True
        if tok == Token("word", "false"):
            return False
        raise SyntaxError(f"not a literal: {tok}")


def evaluate(where: Where, record: Record) -> bool:
    return Parser(tokenize(str(where))).parse()(record)


# --- examples --------------------------------------------------------------------------


def test_renders_the_spec_example() -> None:
    where = Where.is_null("owner_email") & Where.eq("is_new", False) & Where.eq("location_id", 3)
    assert str(where) == "(owner_email IS null) AND is_new EQ false AND location_id EQ 3"


def test_quotes_are_doubled_and_specials_stay_literal() -> None:
    assert str(Where.eq("email", "o'brien@example.com")) == "email EQ 'o''brien@example.com'"
    assert str(Where.eq("email", "a%b(c) OR 1")) == "email EQ 'a%b(c) OR 1'"


def test_mixed_operators_are_parenthesised() -> None:
    a, b, c = Where.eq("id", 1), Where.eq("id", 2), Where.eq("name", "x")
    assert str((a | b) & c) == "(id EQ 1 OR id EQ 2) AND name EQ 'x'"
    assert str(a | (b & c)) == "id EQ 1 OR (id EQ 2 AND name EQ 'x')"
    assert str(~a & c) == "(NOT (id EQ 1)) AND name EQ 'x'"
    assert str(Where.ne("state", "ok") | Where.cp("name", "srv%")) == (
        "state NE 'ok' OR name CP 'srv%'"
    )


def test_all_and_any_skip_missing_parts() -> None:
    assert Where.all([None, None]) is None
    single = Where.eq("id", 1)
    assert Where.all([None, single]) is single
    assert str(Where.any([single, Where.eq("id", 2)])) == "id EQ 1 OR id EQ 2"


@pytest.mark.parametrize("value", ["a\\b", "x\\' OR 1 EQ 1 OR y EQ '", "a\nb", "a\x00b",
                                   "tab\there", "line\u2028sep", "del\x7f"])
def test_unsafe_values_are_refused(value: str) -> None:
    with pytest.raises(UnsafeFilterValue) as caught:
        Where.eq("email", value)
    assert caught.value.type is ErrorType.invalid_param
    assert caught.value.object == "email"
    assert "\n" not in caught.value.value and "\x00" not in caught.value.value


@pytest.mark.parametrize("field", ["email'", "a b", "1x", "", "x)--", "a..b"])
def test_field_names_must_be_identifiers(field: str) -> None:
    with pytest.raises(ValueError, match="field name"):
        Where.eq(field, 1)


def test_only_str_int_bool_values() -> None:
    with pytest.raises(TypeError):
        Where.eq("id", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Where.eq("id", None)  # type: ignore[arg-type]
    assert str(Where.eq("is_new", True)) == "is_new EQ true"
    assert str(Where.eq("id", -4)) == "id EQ -4"


# --- properties ------------------------------------------------------------------------

_TRICKY = st.sampled_from(["'", "''", "%", "(", ")", " AND ", " OR ", " NOT ", " EQ ", " IS null",
                           "@", "\"", ";", "--", "/*", "_", " "])
_SAFE_CHAR = st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs"),
                           blacklist_characters="\\")
safe_text = st.lists(st.one_of(_TRICKY, _SAFE_CHAR), max_size=30).map("".join)


@given(value=safe_text)
def test_a_string_value_is_exactly_one_literal_for_every_parser(value: str) -> None:
    where = Where.eq("email", value)
    expected = [Token("word", "email"), Token("word", "EQ"), Token("str", value)]
    assert tokenize(str(where)) == expected
    assert tokenize(str(where), backslash_escapes=True) == expected


@given(value=safe_text, other=safe_text)
def test_an_email_filter_matches_only_that_email(value: str, other: str) -> None:
    where = Where.eq("email", value) & Where.is_null("owner_email")
    assert evaluate(where, {"email": value, "owner_email": None})
    assert evaluate(where, {"email": other, "owner_email": None}) == (other == value)
    assert not evaluate(where, {"email": value, "owner_email": "someone@example.com"})


@given(value=st.text().filter(lambda v: "\\" in v or any(ord(c) < 32 or ord(c) == 127
                                                          for c in v)))
def test_values_with_backslash_or_control_chars_never_render(value: str) -> None:
    with pytest.raises(UnsafeFilterValue):
        Where.eq("email", value)


_FIELDS = ("email", "name", "location_id")
_atoms = st.one_of(
    st.builds(lambda f, v: (Where.eq(f, v), lambda r: r.get(f) == v),
              st.sampled_from(_FIELDS), st.one_of(safe_text, st.integers(-5, 5))),
    st.builds(lambda f, v: (Where.ne(f, v), lambda r: r.get(f) != v),
              st.sampled_from(_FIELDS), st.one_of(safe_text, st.integers(-5, 5))),
    st.builds(lambda f: (Where.is_null(f), lambda r: r.get(f) is None),
              st.sampled_from(_FIELDS)),
)


def _combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda a, b: (a[0] & b[0], lambda r: a[1](r) and b[1](r)), children, children),
        st.builds(lambda a, b: (a[0] | b[0], lambda r: a[1](r) or b[1](r)), children, children),
        st.builds(lambda a: (~a[0], lambda r: not a[1](r)), children),
    )


records = st.fixed_dictionaries({
    "email": st.one_of(st.none(), safe_text, st.sampled_from(["a", "'", "%"])),
    "name": st.one_of(st.none(), safe_text),
    "location_id": st.one_of(st.none(), st.integers(-5, 5)),
})


@settings(max_examples=300)
@given(tree=st.recursive(_atoms, _combine, max_leaves=8), record=records)
def test_rendered_trees_mean_what_they_were_built_as(tree: Any, record: Record) -> None:
    where, predicate = tree
    assert evaluate(where, record) == predicate(record)
