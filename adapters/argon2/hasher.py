"""Argon2id password hashes, computed off the event loop, a bounded number at once.

Each hash or verification holds about 19 MiB for tens of milliseconds. They run
on a dedicated pool of `max_concurrent` threads, and at most `max_waiting`
more wait for one: a burst of logins beyond that is refused at once
(UNAVAILABLE, reason PASSWORD_HASHING_BUSY, retry later) instead of queueing
without bound. Memory for hashing stays below max_concurrent x memory_cost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from core.shared.errors import Unavailable

T = TypeVar("T")

# OWASP Password Storage Cheat Sheet, minimum configuration for Argon2id.
MIN_MEMORY_COST_KIB = 19456
MIN_TIME_COST = 2
MIN_PARALLELISM = 1


class Argon2PasswordHasher:
    """ports.identity.PasswordHasher with Argon2id. Parameters below the OWASP
    minimum are refused; stronger ones are welcome."""

    def __init__(self, *, memory_cost: int = MIN_MEMORY_COST_KIB,
                 time_cost: int = MIN_TIME_COST, parallelism: int = MIN_PARALLELISM,
                 max_concurrent: int = 0, max_waiting: int = 64) -> None:
        if (memory_cost < MIN_MEMORY_COST_KIB or time_cost < MIN_TIME_COST
                or parallelism < MIN_PARALLELISM):
            raise ValueError("argon2 parameters are below the OWASP minimum "
                             f"(m={MIN_MEMORY_COST_KIB} KiB, t={MIN_TIME_COST}, "
                             f"p={MIN_PARALLELISM})")
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                      parallelism=parallelism, type=Type.ID)
        self.max_concurrent = max_concurrent or os.cpu_count() or 1
        self.max_waiting = max_waiting
        self._pool = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="argon2")
        #: Calls admitted (running or waiting for a thread).
        self._admitted = 0

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        if self._admitted >= self.max_concurrent + self.max_waiting:
            raise Unavailable("too many sign-ins at once; try again in a moment",
                              reason="PASSWORD_HASHING_BUSY")
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._admitted -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError, TypeError):
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError, ValueError, TypeError):
            return False
