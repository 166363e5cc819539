from __future__ import annotations

import argon2
import pytest

from adapters.argon2 import Argon2PasswordHasher

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher()


async def test_hash_is_argon2id_with_owasp_parameters(hasher: Argon2PasswordHasher) -> None:
    encoded = await hasher.hash(PASSWORD)
    assert PASSWORD not in encoded
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert encoded != await hasher.hash(PASSWORD)  # salted


async def test_verify(hasher: Argon2PasswordHasher) -> None:
    encoded = await hasher.hash(PASSWORD)
    assert await hasher.verify(encoded, PASSWORD) is True
    assert await hasher.verify(encoded, PASSWORD + "!") is False
    assert await hasher.verify("not-a-hash", PASSWORD) is False
    assert await hasher.verify("", PASSWORD) is False
    assert await hasher.verify(encoded[:-10], PASSWORD) is False


async def test_needs_rehash(hasher: Argon2PasswordHasher) -> None:
    assert hasher.needs_rehash(await hasher.hash(PASSWORD)) is False
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1,
                                 type=argon2.Type.ID).hash(PASSWORD)
    assert hasher.needs_rehash(weak) is True
    assert await hasher.verify(weak, PASSWORD) is True  # old hashes still log in
    assert hasher.needs_rehash("garbage") is True


async def test_stronger_parameters_accepted_weaker_refused() -> None:
    strong = Argon2PasswordHasher(memory_cost=19456, time_cost=3)
    assert "$m=19456,t=3,p=1$" in await strong.hash(PASSWORD)
    with pytest.raises(ValueError):
        Argon2PasswordHasher(memory_cost=4096)
    with pytest.raises(ValueError):
        Argon2PasswordHasher(time_cost=1)
