"""A failing statement's error, raised or logged, names no parameter values:
they are personal data (an email) or secrets (a password hash). SQLAlchemy
hides its `[parameters: ...]` (hide_parameters=True on every engine), and of
PostgreSQL's report only the primary message is kept: its DETAIL line repeats
values ("Key (email)=(...)", "Failing row contains (...)"), and a refused
value is quoted in a data exception's message."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.engine import autocommit_engine, create_engine
from adapters.sql.schema import credit_accounts, users
from core.shared.ids import uuid7

EMAIL = "ann.private@example.com"
PASSWORD_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0c2FsdA$c2VjcmV0aGFzaA"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        made = create_engine(request.getfixturevalue("sqlite_url"))
        yield made
        await made.dispose()
        return
    made = create_engine(request.getfixturevalue("pg_url"))
    yield made
    await made.dispose()


def user_row(**changes: Any) -> dict[str, Any]:
    return {"id": uuid7(), "email": EMAIL, "display_name": "Ann", "password_hash": PASSWORD_HASH,
            "roles": ["user"], "preferences": {}, "created_at": NOW, "updated_at": NOW,
            **changes}


def everything_said_about(error: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The error as raised (str, repr, traceback) and as a log line with its stack."""
    logging.getLogger("waqup.test").error("statement failed", exc_info=error)
    return "\n".join([str(error), repr(error), *traceback.format_exception(error),
                      caplog.text])


def assert_no_values(said: str, *values: str) -> None:
    for value in values:
        assert value not in said, f"{value!r} is in the error text:\n{said}"


async def test_unique_violation_names_no_values(engine: AsyncEngine,
                                                caplog: pytest.LogCaptureFixture) -> None:
    async with engine.begin() as conn:
        await conn.execute(users.insert().values(**user_row()))
    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as conn:
            await conn.execute(users.insert().values(**user_row()))
    said = everything_said_about(raised.value, caplog)
    assert "users" in said and "INSERT INTO" in said  # the statement itself is kept
    assert_no_values(said, EMAIL, PASSWORD_HASH, "Ann")


async def test_not_null_and_check_violations_name_no_values(
        engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as conn:
            await conn.execute(users.insert().values(**user_row(display_name=None)))
    assert_no_values(everything_said_about(raised.value, caplog), EMAIL, PASSWORD_HASH)

    user = uuid7()
    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as conn:
            await conn.execute(credit_accounts.insert().values(
                user_id=user, balance=7_654_321, held=9_876_543))
    assert_no_values(everything_said_about(raised.value, caplog),
                     "7654321", "9876543", str(user), user.hex)


async def test_a_bad_parameter_names_no_values(engine: AsyncEngine,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A value the column type refuses before it reaches the database (a naive
    time) fails in SQLAlchemy, which would print every parameter."""
    with pytest.raises(StatementError) as raised:
        async with engine.begin() as conn:
            await conn.execute(users.insert(),
                               user_row(created_at=datetime(2025, 3, 1, 12, 0)))
    assert_no_values(everything_said_about(raised.value, caplog), EMAIL, PASSWORD_HASH)


@pytest.mark.postgres
async def test_postgres_read_pool_hides_parameters_too(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine(pg_url)
    reader = autocommit_engine(engine)
    try:
        with pytest.raises(DBAPIError) as raised:
            async with reader.connect() as conn:
                # An email where a uuid belongs: the server refuses the value
                # and quotes it in its message (a data exception, class 22).
                await conn.execute(select(users.c.id).where(
                    users.c.id == EMAIL))  # type: ignore[arg-type]
        assert_no_values(everything_said_about(raised.value, caplog), EMAIL)
    finally:
        await reader.dispose()
        await engine.dispose()
