"""Wires identity for one process: its units of work, password hasher, token
issuer, the core service and its servicers."""

from __future__ import annotations

from datetime import timedelta

from core.identity.service import IdentityService
from services.contexts.declaration import BuiltContext
from services.contexts.identity.servicers import AuthServicer, UserServicer
from services.runtime.infrastructure import Infrastructure
from services.runtime.retention import audit_log_retention_job, retention_for


def build(infra: Infrastructure) -> BuiltContext:
    from adapters.argon2.hasher import Argon2PasswordHasher
    from adapters.jwt.tokens import JwtTokenIssuer

    if infra.store is not None:
        from adapters.memory.identity import memory_identity_uow

        uow = memory_identity_uow(infra.store, infra.codec, infra.trace_context)
    else:
        from adapters.sql.identity import sql_identity_uow

        uow = sql_identity_uow(infra.engine, infra.codec, infra.trace_context)
    settings = infra.settings
    if infra.keyring is None:
        raise RuntimeError("identity signs tokens: it needs the signing key ring")
    issuer = JwtTokenIssuer(infra.keyring, settings.jwt_issuer, settings.jwt_audience,
                            settings.access_token_ttl_seconds)
    hasher = infra.overrides.get("hasher") or Argon2PasswordHasher(
        max_concurrent=settings.password_hash_concurrency)
    service = IdentityService(infra.notifying(uow), hasher, issuer, infra.clock, infra.cache,
                              refresh_ttl=timedelta(days=settings.refresh_token_ttl_days))
    jobs = audit_log_retention_job(retention_for(infra.store, infra.engine), infra.clock,
                                   settings)
    return BuiltContext(service=service, uow=uow, jobs=jobs, servicers={
        "AuthService": AuthServicer(service), "UserService": UserServicer(service)})
