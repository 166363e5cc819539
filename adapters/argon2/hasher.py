"""Argon2id password hashes, computed off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP Password Storage Cheat Sheet, minimum configuration for Argon2id.
MIN_MEMORY_COST_KIB = 19456
MIN_TIME_COST = 2
MIN_PARALLELISM = 1


class Argon2PasswordHasher:
    """ports.identity.PasswordHasher with Argon2id. Parameters below the OWASP
    minimum are refused; stronger ones are welcome."""

    def __init__(self, *, memory_cost: int = MIN_MEMORY_COST_KIB,
                 time_cost: int = MIN_TIME_COST, parallelism: int = MIN_PARALLELISM) -> None:
        if (memory_cost < MIN_MEMORY_COST_KIB or time_cost < MIN_TIME_COST
                or parallelism < MIN_PARALLELISM):
            raise ValueError("argon2 parameters are below the OWASP minimum "
                             f"(m={MIN_MEMORY_COST_KIB} KiB, t={MIN_TIME_COST}, "
                             f"p={MIN_PARALLELISM})")
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                                      parallelism=parallelism, type=Type.ID)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

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
