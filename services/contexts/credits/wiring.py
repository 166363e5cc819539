"""Wires credits for one process: its units of work, the core service, its
servicers and the sweep of expired holds."""

from __future__ import annotations

from datetime import timedelta

from core.credits.service import CreditsService
from services.contexts.credits.servicers import CreditAccountServicer, CreditLedgerServicer
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure
from services.runtime.scheduler import Job


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.credits import memory_credits_uow

        uow = memory_credits_uow(infra.store)
    else:
        from adapters.sql.credits import sql_credits_uow

        uow = sql_credits_uow(infra.engine)
    service = CreditsService(uow, infra.clock)
    settings, jobs = infra.settings, []
    if settings.hold_sweep_interval_seconds:
        # A caller that died between ReserveCredits and its Commit or Release
        # does not keep the credits held: its hold expires.
        ttl = timedelta(seconds=settings.hold_ttl_seconds)
        jobs.append(Job("credits.expire-holds", settings.hold_sweep_interval_seconds,
                        lambda: service.expire_holds(ttl), counts="holds released"))
    return BuiltContext(service=service, uow=uow, jobs=jobs, servicers={
        "CreditAccountService": CreditAccountServicer(service, infra.page_tokens),
        "CreditLedgerService": CreditLedgerServicer(service)})
