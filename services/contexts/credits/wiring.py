"""Wires credits for one process: its units of work, the core service and its
servicers."""

from __future__ import annotations

from core.credits.service import CreditsService
from services.contexts.credits.servicers import CreditAccountServicer, CreditLedgerServicer
from services.contexts.declaration import BuiltContext
from services.runtime.infrastructure import Infrastructure


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.credits import memory_credits_uow

        uow = memory_credits_uow(infra.store)
    else:
        from adapters.sql.credits import sql_credits_uow

        uow = sql_credits_uow(infra.engine)
    service = CreditsService(uow, infra.clock)
    return BuiltContext(service=service, uow=uow, servicers={
        "CreditAccountService": CreditAccountServicer(service, infra.page_tokens),
        "CreditLedgerService": CreditLedgerServicer(service)})
