"""Payments' port onto the catalog (what a pack costs and whether the buyer
owns it already): an in-process call when this process serves the catalog,
the catalog's public GetPack with the buyer's own token when it does not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc

from core.payments.model import PackNotForSale, SaleItem
from core.shared.errors import AlreadyExists, NotFound
from services.api.context import request_var
from services.api.convert import minor_units
from services.api.creation import resource_id
from services.api.peers import Peer, peer_error
from services.gen.waqup.catalog.v1 import catalog_pb2, catalog_pb2_grpc


def _check(*, listed: bool, sold: bool, own: bool, owned: bool) -> None:
    if not listed:
        raise NotFound("no such pack")
    if own:
        raise PackNotForSale("this pack is yours")
    if not sold:
        raise PackNotForSale("this pack is not sold (free, or members only)")
    if owned:
        raise AlreadyExists("you own this pack already", reason="ALREADY_OWNED")


_INTERVALS = {catalog_pb2.SUBSCRIPTION_INTERVAL_MONTHLY: "month",
              catalog_pb2.SUBSCRIPTION_INTERVAL_ANNUAL: "year"}


class LocalCatalog:
    def __init__(self, service: Callable[[], Any]) -> None:
        self._service = service

    async def pack_for_sale(self, user_id: uuid.UUID, pack_id: uuid.UUID) -> SaleItem:
        view = await self._service().get_pack(user_id, pack_id)
        pack = view.pack
        _check(listed=pack.listed, sold=pack.price.sold, own=pack.creator_id == user_id,
               owned=view.owned)
        return SaleItem(pack_id=pack.id, creator_id=pack.creator_id, title=pack.title,
                        amount_minor=pack.price.amount_minor, currency=pack.price.currency,
                        interval=pack.price.interval.value if pack.price.interval else None)


class RemoteCatalog:
    def __init__(self, peer: Peer) -> None:
        self._stub = catalog_pb2_grpc.PackServiceStub(peer.channel)
        self._timeout = peer.timeout

    async def pack_for_sale(self, user_id: uuid.UUID, pack_id: uuid.UUID) -> SaleItem:
        info = request_var.get()
        token = info.bearer if info is not None else ""
        try:
            pack = await self._stub.GetPack(catalog_pb2.GetPackRequest(name=f"packs/{pack_id}"),
                                            metadata=(("authorization", f"Bearer {token}"),),
                                            timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise NotFound("no such pack") from None
            raise peer_error(error) from None
        creator = resource_id(pack.creator, "creators")
        amount, currency = minor_units(pack.price, "price")
        _check(listed=pack.state == catalog_pb2.PACK_STATE_PUBLISHED,
               sold=pack.price_type == catalog_pb2.PRICE_TYPE_ONE_TIME or (
                   pack.price_type == catalog_pb2.PRICE_TYPE_SUBSCRIPTION and amount > 0),
               own=creator == user_id, owned=pack.owned)
        return SaleItem(pack_id=pack_id, creator_id=creator, title=pack.title,
                        amount_minor=amount, currency=currency,
                        interval=_INTERVALS.get(pack.subscription_interval))
