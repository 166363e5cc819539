"""Test doubles for core unit tests: a clock the test moves, a cheap hasher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class PlainHasher:
    """Not a hash at all: keeps core tests fast. The real one has its own tests."""

    def __init__(self) -> None:
        self.rehash = False

    async def hash(self, password: str) -> str:
        return f"plain${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == f"plain${password[::-1]}"

    def needs_rehash(self, password_hash: str) -> bool:
        return self.rehash
