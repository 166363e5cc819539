"""Wires rewards for one process: its ledger, the core service, servicers."""

from __future__ import annotations

from core.rewards.service import RewardsService
from services.contexts.declaration import BuiltContext
from services.contexts.rewards.servicers import RewardAccountServicer, RewardLedgerServicer
from services.runtime.infrastructure import Infrastructure


def build(infra: Infrastructure) -> BuiltContext:
    if infra.store is not None:
        from adapters.memory.payments import memory_rewards_uow

        uow = memory_rewards_uow(infra.store)
    else:
        from adapters.sql.payments import sql_rewards_uow

        uow = sql_rewards_uow(infra.engine)
    service = RewardsService(uow, infra.clock, infra.settings.creator_share_percent)
    return BuiltContext(service=service, uow=uow, servicers={
        "RewardAccountService": RewardAccountServicer(service, infra.page_tokens),
        "RewardLedgerService": RewardLedgerServicer(service)})
