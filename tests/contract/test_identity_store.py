"""The identity unit of work's contract, for every adapter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.identity.model import (
    AuditAction,
    AuditEntry,
    Pace,
    Preferences,
    RefreshToken,
    Tone,
    User,
    UserRegistered,
)
from core.shared.errors import AlreadyExists
from core.shared.ids import uuid7
from tests.contract.codec import JsonEventCodec
from tests.contract.conftest import Backend

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_user(email: str = "ada@example.com", **kw: object) -> User:
    fields: dict[str, object] = {"id": uuid7(), "email": email, "display_name": "Ada",
                                 "password_hash": "$argon2id$fake", "created_at": NOW,
                                 "updated_at": NOW}
    fields.update(kw)
    return User(**fields)  # type: ignore[arg-type]


def make_token(user: User, family: uuid.UUID | None = None) -> RefreshToken:
    token_id = uuid7()
    return RefreshToken(id=token_id, family_id=family or uuid7(), user_id=user.id,
                        token_hash=token_id.hex + "0" * 32, created_at=NOW,
                        expires_at=NOW + timedelta(days=30))


async def add_user(backend: Backend, user: User) -> None:
    async with backend.identity_uow() as uow:
        await uow.users.add(user)
        await uow.commit()


async def test_email_is_unique(backend: Backend) -> None:
    await add_user(backend, make_user())
    async with backend.identity_uow() as uow:
        with pytest.raises(AlreadyExists) as caught:
            await uow.users.add(make_user())
        assert caught.value.reason == "EMAIL_TAKEN"
        # The transaction is still usable after the refusal.
        other = make_user("bob@example.com")
        await uow.users.add(other)
        await uow.commit()
    async with backend.identity_uow() as uow:
        assert await uow.users.get(other.id) is not None


async def test_user_round_trip(backend: Backend) -> None:
    user = make_user(roles=("user", "creator"),
                     preferences=Preferences(voice="nova", pace=Pace.SLOW, tone=Tone.CALM))
    await add_user(backend, user)
    async with backend.identity_uow() as uow:
        by_id = await uow.users.get(user.id)
        by_email = await uow.users.get_by_email("ada@example.com")
        assert await uow.users.get(uuid7()) is None
        assert await uow.users.get_by_email("nobody@example.com") is None
    assert by_id == user == by_email
    assert by_id is not None
    assert by_id.created_at.tzinfo is not None and by_id.created_at.utcoffset() == timedelta(0)

    later = NOW + timedelta(minutes=5)
    by_id.preferences = Preferences(voice="echo", pace=Pace.FAST, tone=Tone.WARM)
    by_id.updated_at = later.astimezone(timezone(timedelta(hours=2)))  # stored as UTC
    by_id.password_hash = "$argon2id$new"
    async with backend.identity_uow() as uow:
        await uow.users.update(by_id)
        await uow.commit()
    async with backend.identity_uow() as uow:
        again = await uow.users.get(user.id)
    assert again is not None
    assert again.preferences == Preferences(voice="echo", pace=Pace.FAST, tone=Tone.WARM)
    assert again.password_hash == "$argon2id$new"
    assert again.roles == ("user", "creator")
    assert again.updated_at == later and again.updated_at.utcoffset() == timedelta(0)
    assert again.created_at == NOW


async def test_update_to_a_taken_email_is_refused(backend: Backend) -> None:
    ada, bob = make_user(), make_user("bob@example.com")
    await add_user(backend, ada)
    await add_user(backend, bob)
    bob.email = ada.email
    async with backend.identity_uow() as uow:
        with pytest.raises(AlreadyExists):
            await uow.users.update(bob)


async def test_changes_are_discarded_without_commit(backend: Backend) -> None:
    user = make_user()
    async with backend.identity_uow() as uow:
        await uow.users.add(user)
    async with backend.identity_uow() as uow:
        assert await uow.users.get(user.id) is None


async def test_refresh_token_is_spent_once(backend: Backend) -> None:
    user = make_user()
    token = make_token(user)
    async with backend.identity_uow() as uow:
        await uow.users.add(user)
        await uow.refresh_tokens.add(token)
        await uow.commit()
    async with backend.identity_uow() as uow:
        assert await uow.refresh_tokens.get_by_hash(token.token_hash) == token
        assert await uow.refresh_tokens.get_by_hash("f" * 64) is None
        assert await uow.refresh_tokens.mark_used(token.id, NOW) is True
        assert await uow.refresh_tokens.mark_used(token.id, NOW) is False
        await uow.commit()
    async with backend.identity_uow() as uow:
        assert await uow.refresh_tokens.mark_used(token.id, NOW) is False
        stored = await uow.refresh_tokens.get_by_hash(token.token_hash)
    assert stored is not None and stored.used_at == NOW
    assert await _mark_unknown(backend) is False


async def _mark_unknown(backend: Backend) -> bool:
    async with backend.identity_uow() as uow:
        return await uow.refresh_tokens.mark_used(uuid7(), NOW)


async def test_revoke_family(backend: Backend) -> None:
    user = make_user()
    family = uuid7()
    spent, live, other = make_token(user, family), make_token(user, family), make_token(user)
    async with backend.identity_uow() as uow:
        await uow.users.add(user)
        for token in (spent, live, other):
            await uow.refresh_tokens.add(token)
        await uow.refresh_tokens.mark_used(spent.id, NOW)
        await uow.commit()
    later = NOW + timedelta(hours=1)
    async with backend.identity_uow() as uow:
        assert await uow.refresh_tokens.revoke_family(family, later) == 2
        assert await uow.refresh_tokens.revoke_family(family, later) == 0
        await uow.commit()
    async with backend.identity_uow() as uow:
        assert await uow.refresh_tokens.mark_used(live.id, later) is False
        stored_live = await uow.refresh_tokens.get_by_hash(live.token_hash)
        stored_other = await uow.refresh_tokens.get_by_hash(other.token_hash)
    assert stored_live is not None and stored_live.revoked_at == later
    assert stored_other is not None and stored_other.revoked_at is None


async def test_audit_log(backend: Backend) -> None:
    user = make_user()
    first = AuditEntry(id=uuid7(), action=AuditAction.REGISTER, created_at=NOW,
                       user_id=user.id, request_id="req-1")
    second = AuditEntry(id=uuid7(), action=AuditAction.LOGIN_FAILED,
                        created_at=NOW + timedelta(seconds=1), user_id=user.id,
                        details={"email": user.email})
    anonymous = AuditEntry(id=uuid7(), action=AuditAction.LOGIN_FAILED, created_at=NOW,
                           details={"email": "who@example.com"})
    async with backend.identity_uow() as uow:
        await uow.users.add(user)
        for entry in (second, anonymous, first):
            await uow.audit.record(entry)
        await uow.commit()
    async with backend.identity_uow() as uow:
        assert await uow.audit.list_for_user(user.id) == [first, second]
        assert await uow.audit.list_for_user(uuid7()) == []


async def test_outbox_is_written_only_on_commit(backend: Backend) -> None:
    kept = make_user()
    dropped = make_user("bob@example.com")
    kept_event = UserRegistered(user_id=kept.id, occurred_at=NOW)
    async with backend.identity_uow() as uow:
        await uow.users.add(kept)
        await uow.outbox.add(kept_event)
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with backend.identity_uow() as uow:
            await uow.users.add(dropped)
            await uow.outbox.add(UserRegistered(user_id=dropped.id, occurred_at=NOW))
            raise RuntimeError("boom")
    pending = await backend.outbox_store.fetch_pending(10, NOW + timedelta(seconds=1))
    assert [m.event_id for m in pending] == [kept_event.event_id]
    message = pending[0]
    assert message.topic == UserRegistered.topic
    assert message.created_at == NOW and message.attempts == 0
    assert JsonEventCodec().decode(message.topic, message.payload, message.event_id) == kept_event
