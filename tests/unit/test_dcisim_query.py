"""The simulator's where/orderby/limit language, on plain records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmdci6_sandbox.dcisim.query import (
    QuerySyntaxError,
    apply_orderby,
    parse_limit,
    parse_orderby,
    parse_where,
)

RECORDS: list[dict[str, Any]] = [
    {"id": 1, "name": "alpha", "owner_email": None, "is_new": False, "location_id": 3,
     "operation": {"status": "ok"}, "ip": [{"name": "203.0.113.10"}], "roles": ["@user"]},
    {"id": 2, "name": "Beta", "owner_email": "bob@client.example", "is_new": False,
     "location_id": 1, "operation": None, "ip": [], "roles": "[@admin]"},
    {"id": 3, "name": "gamma", "owner_email": None, "is_new": True, "location_id": 3,
     "operation": {"status": "failed"}, "ip": [{"name": "203.0.113.11"}, {"name": "2001:db8::5"}],
     "roles": ["@admin", "@user"]},
    {"id": 4, "name": "O'Brien 50%", "owner_email": "o'brien@client.example", "is_new": False,
     "location_id": 2, "operation": {"status": "canceled"}, "ip": [], "roles": []},
]  # fmt: skip


def ids(where: str) -> list[int]:
    predicate = parse_where(where)
    assert predicate is not None
    return [record["id"] for record in RECORDS if predicate.matches(record)]


def test_spec_example() -> None:
    assert ids("(owner_email IS null) AND is_new EQ false AND location_id EQ 3") == [1]


def test_empty_filter_is_no_filter() -> None:
    assert parse_where("") is None
    assert parse_where("   ") is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("id EQ 1 OR id EQ 2 AND id EQ 3", [1]),  # AND binds tighter than OR
        ("(id EQ 1 OR id EQ 2) AND id EQ 2", [2]),
        ("NOT id EQ 1 AND location_id EQ 3", [3]),  # NOT binds tighter than AND
        ("NOT (id EQ 1 OR id EQ 3)", [2, 4]),
        ("NOT NOT id EQ 4", [4]),
        ("((id EQ 2))", [2]),
        ("id EQ 1 or id eq 2", [1, 2]),  # keywords are case-insensitive
    ],
)
def test_precedence_and_parentheses(where: str, expected: list[int]) -> None:
    assert ids(where) == expected


def test_is_null_and_is_not_null() -> None:
    assert ids("owner_email IS null") == [1, 3]
    assert ids("owner_email IS NOT null") == [2, 4]
    assert ids("operation IS null") == [2]
    assert ids("ip IS null") == [2, 4]  # an empty list holds no value


def test_nested_fields_and_lists_match_any_element() -> None:
    assert ids("operation.status EQ 'ok' OR operation.status EQ 'canceled'") == [1, 4]
    assert ids("ip.name EQ '203.0.113.11'") == [3]
    assert ids("roles CP '%admin%'") == [2, 3]


def test_string_comparison_is_case_insensitive() -> None:
    assert ids("name EQ 'beta'") == [2]
    assert ids("name NE 'ALPHA'") == [2, 3, 4]


def test_null_is_neither_equal_nor_unequal() -> None:
    assert ids("owner_email NE 'bob@client.example'") == [4]
    assert ids("NOT owner_email EQ 'bob@client.example'") == [4]


def test_cp_is_like_with_percent_and_underscore() -> None:
    assert ids("name CP 'gam%'") == [3]
    assert ids("name CP '%a'") == [1, 2, 3]
    assert ids("name CP '_eta'") == [2]
    assert ids("name CP 'eta'") == []  # a pattern matches the whole value


def test_escaping_keeps_quotes_and_wildcards_literal() -> None:
    assert ids("name EQ 'O''Brien 50%'") == [4]
    assert ids("name EQ 'O\\'Brien 50%'") == [4]
    assert ids("owner_email EQ 'o''brien@client.example'") == [4]
    # An e-mail full of operators still compares as one literal.
    assert ids("owner_email EQ 'x'' OR id EQ 1 OR name EQ ''y'") == []
    assert ids("name CP '%50\\\\%'") == [4]  # `\\%` in the literal is a literal %
    assert ids("name CP 'O''Brien 5\\\\_%'") == []


def test_numbers_and_booleans() -> None:
    assert ids("location_id EQ 3") == [1, 3]
    assert ids("location_id EQ '3'") == [1, 3]
    assert ids("location_id NE 3.0") == [2, 4]
    assert ids("is_new EQ true") == [3]
    assert ids("is_new EQ 'false'") == []  # a word is not a boolean


@pytest.mark.parametrize(
    "where",
    [
        "id EQ",
        "EQ 1",
        "id EQ 1 AND",
        "(id EQ 1",
        "id EQ 1)",
        "id EQ 'unterminated",
        "id LIKE 'x'",
        "id EQ 1 id EQ 2",
        "id EQ null",
        "id IS 'x'",
        "id EQ 1; DROP TABLE server",
        "id EQ \"double\"",
        "NOT",
        "()",
    ],
)
def test_malformed_filters_are_rejected(where: str) -> None:
    with pytest.raises(QuerySyntaxError):
        parse_where(where)


def test_unknown_fields_are_rejected_when_fields_are_given() -> None:
    assert parse_where("name EQ 'x'", fields=["name"]) is not None
    with pytest.raises(QuerySyntaxError, match="unknown field"):
        parse_where("password EQ 'x'", fields=["name"])


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@given(st.text(min_size=0, max_size=40))
def test_any_quoted_value_matches_only_itself(value: str) -> None:
    """Quote doubling plus backslash escaping can never widen a filter."""
    predicate = parse_where(f"name EQ {_quote(value)}")
    assert predicate is not None
    assert predicate.matches({"name": value})
    assert not predicate.matches({"name": value + "x"})
    cp = parse_where(f"name CP {_quote(value.replace('%', '').replace('_', ''))}")
    assert cp is not None
    assert not cp.matches({"name": "\n" + value + "zz"})


def test_orderby() -> None:
    keys = parse_orderby("location_id desc, name")
    ordered = apply_orderby(RECORDS, keys)
    assert [record["id"] for record in ordered] == [1, 3, 4, 2]
    nulls_first = apply_orderby(RECORDS, parse_orderby("owner_email asc"))
    assert [record["id"] for record in nulls_first][:2] == [1, 3]
    assert parse_orderby("") == []


@pytest.mark.parametrize("text", ["id sideways", "id asc desc", "1d asc", "id asc,"])
def test_malformed_orderby(text: str) -> None:
    with pytest.raises(QuerySyntaxError):
        parse_orderby(text)


def test_orderby_unknown_field() -> None:
    with pytest.raises(QuerySyntaxError):
        parse_orderby("secret asc", fields=["id"])


def test_limit() -> None:
    assert parse_limit("10") == (0, 10)
    assert parse_limit("20,5") == (20, 5)
    assert parse_limit(" 20 , 5 ") == (20, 5)
    for bad in ("", "-1", "a,b", "1,2,3", "1.5"):
        with pytest.raises(QuerySyntaxError):
            parse_limit(bad)
