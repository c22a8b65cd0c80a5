"""Faults injected on demand, each counted down per matching request (thread-safe)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Rule:
    kind: str  # "drop", "slow", "503", "500"
    remaining: int
    path_contains: str | None
    seconds: float = 0.0

    def applies_to(self, path: str) -> bool:
        return self.remaining > 0 and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request: drop it, delay it, or answer it with an error status."""

    drop: bool = False
    delay: float = 0.0
    status: int | None = None


class Faults:
    def __init__(self, expire_tokens: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._expire_tokens = expire_tokens

    def _add(self, kind: str, count: int, path_contains: str | None, seconds: float = 0.0) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._rules.append(_Rule(kind, count, path_contains, seconds))

    def burst_503(self, count: int, path_contains: str | None = None) -> None:
        """The next `count` matching requests get 503, as a waking-up panel answers."""
        self._add("503", count, path_contains)

    def error_500(self, count: int, path_contains: str | None = None) -> None:
        self._add("500", count, path_contains)

    def slow(self, seconds: float, count: int, path_contains: str | None = None) -> None:
        """The next `count` matching requests are answered (and acted on) after `seconds`."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._add("slow", count, path_contains, seconds)

    def drop(self, count: int, path_contains: str | None = None) -> None:
        """The next `count` matching requests are read, not acted on, and the connection is
        closed without an answer."""
        self._add("drop", count, path_contains)

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 401; logging in again works."""
        self._expire_tokens()

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> int:
        """Requests still to be hit by some fault."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def _consume(self, kind: str, path: str) -> _Rule | None:
        for rule in self._rules:
            if rule.kind == kind and rule.applies_to(path):
                rule.remaining -= 1
                return rule
        return None

    def plan(self, path: str) -> FaultPlan:
        """Consumes the faults this request meets: a drop hides every other fault."""
        with self._lock:
            if self._consume("drop", path):
                plan = FaultPlan(drop=True)
            else:
                slow = self._consume("slow", path)
                status = None
                if self._consume("503", path):
                    status = 503
                elif self._consume("500", path):
                    status = 500
                plan = FaultPlan(delay=slow.seconds if slow else 0.0, status=status)
            self._rules = [rule for rule in self._rules if rule.remaining > 0]
            return plan
