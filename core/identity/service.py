"""Identity's use cases."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from core.identity.model import (
    AuditAction,
    AuditEntry,
    Preferences,
    RefreshToken,
    User,
    UserProfile,
    UserRegistered,
    check_password,
    hash_refresh_secret,
    new_refresh_secret,
    normalize_email,
)
from core.shared.errors import InvalidArgument, NotFound, Unauthenticated
from core.shared.ids import uuid7
from core.shared.text import clean_name

if TYPE_CHECKING:
    from ports.common import Cache, Clock
    from ports.identity import (
        IdentityUnitOfWork,
        IdentityUnitOfWorkFactory,
        PasswordHasher,
        TokenIssuer,
    )

log = logging.getLogger(__name__)

PROFILE_TTL_SECONDS = 15 * 60
DISPLAY_NAME_MAX = 100


def profile_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}:profile"


class InvalidCredentials(Unauthenticated):
    reason = "INVALID_CREDENTIALS"


class InvalidRefreshToken(Unauthenticated):
    reason = "INVALID_REFRESH_TOKEN"


class RefreshTokenReused(Unauthenticated):
    reason = "REFRESH_TOKEN_REUSED"


@dataclass(frozen=True)
class AuthResult:
    access_token: str
    refresh_token: str
    expires_in: int
    user: UserProfile


class IdentityService:
    def __init__(self, uow: IdentityUnitOfWorkFactory, hasher: PasswordHasher,
                 tokens: TokenIssuer, clock: Clock, cache: Cache,
                 refresh_ttl: timedelta = timedelta(days=30)) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._cache = cache
        self._refresh_ttl = refresh_ttl
        self._dummy_hash: str | None = None

    # --- sessions ---------------------------------------------------------------

    async def register(self, email: str, password: str, display_name: str,
                       request_id: str = "") -> AuthResult:
        email = normalize_email(email)
        check_password(password)
        display_name = clean_name(display_name, "display_name", DISPLAY_NAME_MAX)
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        user = User(id=uuid7(), email=email, display_name=display_name,
                    password_hash=password_hash, created_at=now, updated_at=now)
        async with self._uow() as uow:
            await uow.users.add(user)
            await uow.audit.record(AuditEntry(id=uuid7(), action=AuditAction.REGISTER,
                                              created_at=now, user_id=user.id,
                                              request_id=request_id))
            await uow.outbox.add(UserRegistered(user_id=user.id, occurred_at=now))
            result = await self._start_session(uow, user, family_id=uuid7())
            await uow.commit()
        return result

    async def login(self, email: str, password: str, request_id: str = "") -> AuthResult:
        try:
            email = normalize_email(email)
        except InvalidArgument:
            email = ""  # no such account can exist: same answer as an unknown one
        user = None
        if email:
            async with self._uow() as uow:
                user = await uow.users.get_by_email(email)
        if user is None:
            await self._hasher.verify(await self._dummy(), password)  # same cost either way
            ok = False
        else:
            ok = await self._hasher.verify(user.password_hash, password)
        now = self._clock.now()
        async with self._uow() as uow:
            if not ok:
                await uow.audit.record(AuditEntry(
                    id=uuid7(), action=AuditAction.LOGIN_FAILED, created_at=now,
                    user_id=user.id if user else None, request_id=request_id,
                    details={"email": email} if email else {}))
                await uow.commit()
                raise InvalidCredentials("email or password is wrong")
            assert user is not None
            if self._hasher.needs_rehash(user.password_hash):
                user.password_hash = await self._hasher.hash(password)
                await uow.users.update(user)
            await uow.audit.record(AuditEntry(id=uuid7(), action=AuditAction.LOGIN,
                                              created_at=now, user_id=user.id,
                                              request_id=request_id))
            result = await self._start_session(uow, user, family_id=uuid7())
            await uow.commit()
        return result

    async def refresh(self, refresh_token: str, request_id: str = "") -> AuthResult:
        token_hash = hash_refresh_secret(refresh_token)
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.refresh_tokens.get_by_hash(token_hash)
            if current is None or current.revoked_at is not None:
                raise InvalidRefreshToken("the refresh token is not valid")
            if current.used_at is not None or not await uow.refresh_tokens.mark_used(
                    current.id, now):
                revoked = await uow.refresh_tokens.revoke_family(current.family_id, now)
                await uow.audit.record(AuditEntry(
                    id=uuid7(), action=AuditAction.REFRESH_REUSED, created_at=now,
                    user_id=current.user_id, request_id=request_id,
                    details={"family_id": str(current.family_id), "revoked": str(revoked)}))
                await uow.commit()
                raise RefreshTokenReused("the refresh token was already used; "
                                         "every session of this login is revoked")
            if current.expires_at <= now:
                raise InvalidRefreshToken("the refresh token has expired")
            user = await uow.users.get(current.user_id)
            if user is None:
                raise InvalidRefreshToken("the account no longer exists")
            result = await self._start_session(uow, user, family_id=current.family_id)
            await uow.commit()
        return result

    async def logout(self, refresh_token: str, request_id: str = "") -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.refresh_tokens.get_by_hash(hash_refresh_secret(refresh_token))
            if current is None:
                return
            revoked = await uow.refresh_tokens.revoke_family(current.family_id, now)
            if revoked:
                await uow.audit.record(AuditEntry(
                    id=uuid7(), action=AuditAction.LOGOUT, created_at=now,
                    user_id=current.user_id, request_id=request_id,
                    details={"family_id": str(current.family_id)}))
            await uow.commit()

    def jwks(self) -> list[dict[str, str]]:
        return self._tokens.jwks()

    # --- the account ------------------------------------------------------------

    async def get_profile(self, user_id: uuid.UUID) -> UserProfile:
        key = profile_key(user_id)
        cached = await self._cache_get(key)
        if cached is not None:
            return UserProfile.from_json(cached)
        async with self._uow(read_only=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("no such user", reason="USER_NOT_FOUND")
        profile = user.profile()
        await self._cache_set(key, profile.to_json())
        return profile

    async def update_preferences(self, user_id: uuid.UUID, changes: Preferences,
                                 fields: frozenset[str]) -> Preferences:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("no such user", reason="USER_NOT_FOUND")
            user.preferences = user.preferences.merged(changes, fields)
            user = replace(user, updated_at=self._clock.now())
            await uow.users.update(user)
            await uow.commit()
        await self._cache_delete(profile_key(user_id))
        return user.preferences

    async def grant_role(self, user_id: uuid.UUID, role: str) -> bool:
        """Add `role` to the person's roles (their next access token carries
        it). Idempotent: False when they had it, or no longer exist."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None or role in user.roles:
                return False
            await uow.users.update(replace(user, roles=(*user.roles, role),
                                           updated_at=self._clock.now()))
            await uow.commit()
        await self._cache_delete(profile_key(user_id))
        return True

    # --- helpers ----------------------------------------------------------------

    async def _start_session(self, uow: IdentityUnitOfWork, user: User,
                             family_id: uuid.UUID) -> AuthResult:
        now = self._clock.now()
        secret = new_refresh_secret()
        await uow.refresh_tokens.add(RefreshToken(
            id=uuid7(), family_id=family_id, user_id=user.id,
            token_hash=hash_refresh_secret(secret), created_at=now,
            expires_at=now + self._refresh_ttl))
        access = self._tokens.issue(str(user.id), user.roles, now)
        return AuthResult(access_token=access.token, refresh_token=secret,
                          expires_in=access.expires_in, user=user.profile())

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # The cache is an optimisation: when it fails, the database answers.
    async def _cache_get(self, key: str) -> bytes | None:
        try:
            return await self._cache.get(key)
        except Exception:
            log.warning("cache read failed; reading the database", exc_info=True)
            return None

    async def _cache_set(self, key: str, value: bytes) -> None:
        try:
            await self._cache.set(key, value, PROFILE_TTL_SECONDS)
        except Exception:
            log.warning("cache write failed", exc_info=True)

    async def _cache_delete(self, key: str) -> None:
        try:
            await self._cache.delete(key)
        except Exception:
            log.warning("cache invalidation failed", exc_info=True)
