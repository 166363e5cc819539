"""gRPC servicers of the catalog context: protobuf <-> core."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC

import grpc

from core.catalog.model import (
    Access,
    Creator,
    EntitlementSource,
    Interval,
    PackItem,
    PackState,
    Price,
    PriceType,
)
from core.catalog.search import SearchOrder, SearchQuery
from core.catalog.service import CatalogService, PackChanges, PackView
from core.shared.auth import resolve_user
from core.shared.errors import InvalidArgument, PermissionDenied
from services.api.context import current_principal
from services.api.convert import duration, minor_units, money, timestamp, update_paths, user_segment
from services.api.creation import CONTENT_TYPE_FROM_PB, CONTENT_TYPE_TO_PB, resource_id
from services.api.filters import filter_terms
from services.api.pagination import PageTokens
from services.contexts.catalog.uploads import MAX_UPLOAD_BYTES
from services.gen.waqup.catalog.v1 import catalog_pb2 as pb
from services.gen.waqup.catalog.v1 import catalog_pb2_grpc as rpc
from services.gen.waqup.common.v1 import creation_pb2 as common

_PRICE_TYPE_TO_PB = {PriceType.FREE: pb.PRICE_TYPE_FREE,
                     PriceType.ONE_TIME: pb.PRICE_TYPE_ONE_TIME,
                     PriceType.SUBSCRIPTION: pb.PRICE_TYPE_SUBSCRIPTION}
_PRICE_TYPE_FROM_PB = {v: k for k, v in _PRICE_TYPE_TO_PB.items()}
_INTERVAL_TO_PB = {Interval.MONTHLY: pb.SUBSCRIPTION_INTERVAL_MONTHLY,
                   Interval.ANNUAL: pb.SUBSCRIPTION_INTERVAL_ANNUAL}
_INTERVAL_FROM_PB = {v: k for k, v in _INTERVAL_TO_PB.items()}
_STATE_TO_PB = {PackState.DRAFT: pb.PACK_STATE_DRAFT, PackState.PUBLISHED: pb.PACK_STATE_PUBLISHED,
                PackState.ARCHIVED: pb.PACK_STATE_ARCHIVED}
_ACCESS_TO_PB = {Access.NOT_LISTED: pb.ACCESS_REASON_NOT_LISTED,
                 Access.NOT_OWNED: pb.ACCESS_REASON_NOT_OWNED,
                 Access.FREE: pb.ACCESS_REASON_FREE, Access.ENTITLED: pb.ACCESS_REASON_ENTITLED,
                 Access.OWNER: pb.ACCESS_REASON_ENTITLED}
_ORDERS = {"": SearchOrder.RELEVANCE, "relevance": SearchOrder.RELEVANCE,
           "newest": SearchOrder.NEWEST, "popularity": SearchOrder.POPULARITY}
_FILTER_HELP = ('filter must be terms `content_type = CONTENT_TYPE_...`, `price_type = '
                'PRICE_TYPE_...`, `creator = "creators/..."`, `tag = "..."` joined by AND')
_MASKS = {"display_name", "bio", "links"}
_PACK_MASKS = {"title", "description", "price_type", "price", "subscription_interval", "tags"}


def creator_pb(creator: Creator, pack_count: int = 0) -> pb.Creator:
    return pb.Creator(name=f"creators/{creator.user_id}", display_name=creator.display_name,
                      bio=creator.bio, links=creator.links, pack_count=pack_count,
                      create_time=timestamp(creator.created_at))


def pack_pb(view: PackView) -> pb.Pack:
    pack = view.pack
    message = pb.Pack(
        name=f"packs/{pack.id}", title=pack.title, description=pack.description,
        price_type=_PRICE_TYPE_TO_PB[pack.price.type],
        state=_STATE_TO_PB[pack.state], creator=f"creators/{pack.creator_id}",
        tags=pack.tags, content_types=[CONTENT_TYPE_TO_PB[t] for t in pack.content_types],
        item_count=len(pack.items), owned=view.owned, popularity=min(pack.popularity, 2**31 - 1),
        create_time=timestamp(pack.created_at), update_time=timestamp(pack.updated_at))
    if pack.price.interval is not None:
        message.subscription_interval = _INTERVAL_TO_PB[pack.price.interval]
    if pack.price.sold:
        message.price.CopyFrom(money(pack.price.amount_minor, pack.price.currency))
    if pack.published_at is not None:
        message.publish_time.CopyFrom(timestamp(pack.published_at))
    if view.creator is not None:
        message.creator_profile.CopyFrom(creator_pb(view.creator, view.creator_pack_count))
    return message


def item_pb(pack_id: uuid.UUID, item: PackItem) -> pb.PackItem:
    return pb.PackItem(name=f"packs/{pack_id}/items/{item.content_id}",
                       content=f"contents/{item.content_id}", title=item.title,
                       content_type=CONTENT_TYPE_TO_PB[item.content_type],
                       duration=duration(item.duration_ms), position=item.position)



def _price(message: pb.Pack) -> Price:
    kind = _PRICE_TYPE_FROM_PB.get(message.price_type)
    if kind is None:
        raise InvalidArgument("price_type must be PRICE_TYPE_FREE, PRICE_TYPE_ONE_TIME or "
                              "PRICE_TYPE_SUBSCRIPTION", reason="INVALID_PRICE",
                              metadata={"field": "price_type"})
    interval = _INTERVAL_FROM_PB.get(message.subscription_interval)
    priced = message.HasField("price") and bool(message.price.units or message.price.nanos)
    if kind is PriceType.FREE or (kind is PriceType.SUBSCRIPTION and not priced):
        if priced or interval is not None:
            raise InvalidArgument("a free or members-only pack has no price or interval",
                                  reason="INVALID_PRICE", metadata={"field": "price"})
        return Price(kind)
    amount, currency = minor_units(message.price, "price")
    return Price(kind, amount, currency, interval)


def _links(values: Iterable[str]) -> tuple[str, ...]:
    links = tuple(v.strip() for v in values)
    for link in links:
        if not link.startswith("https://") or any(c.isspace() or ord(c) < 32 for c in link):
            raise InvalidArgument("links must be https URLs", reason="INVALID_ARGUMENT",
                                  metadata={"field": "links"})
    return links


def search_query(request: pb.SearchPacksRequest, offset: int, limit: int) -> SearchQuery:
    terms = filter_terms(request.filter, ("content_type", "price_type", "creator", "tag"),
                         _FILTER_HELP)
    order = _ORDERS.get(request.order_by.strip().lower())
    if order is None:
        raise InvalidArgument("order_by must be relevance, newest or popularity",
                              reason="INVALID_ORDER_BY", metadata={"field": "order_by"})
    content_type = price_type = None
    if "content_type" in terms:
        number = (common.ContentType.Value(terms["content_type"])
                  if terms["content_type"] in common.ContentType.keys() else None)
        if number is None or number not in CONTENT_TYPE_FROM_PB:
            raise InvalidArgument(_FILTER_HELP, reason="INVALID_FILTER",
                                  metadata={"field": "filter"})
        content_type = CONTENT_TYPE_FROM_PB[number].value
    if "price_type" in terms:
        kind = _PRICE_TYPE_FROM_PB.get(pb.PriceType.Value(terms["price_type"])
                                       if terms["price_type"] in pb.PriceType.keys() else -1)
        if kind is None:
            raise InvalidArgument(_FILTER_HELP, reason="INVALID_FILTER",
                                  metadata={"field": "filter"})
        price_type = kind.value
    creator = (resource_id(terms["creator"], "creators", "filter")
               if "creator" in terms else None)
    return SearchQuery(text=request.query, content_type=content_type, price_type=price_type,
                       creator_id=creator, tag=terms.get("tag"), order=order, offset=offset,
                       limit=limit)


def _upload_id(name: str, pack_id: uuid.UUID) -> uuid.UUID:
    """The upload of `packs/{pack}/uploads/{upload}` (of this pack)."""
    pack_part, sep, upload = name.partition("/uploads/")
    if not sep or resource_id(pack_part, "packs", "upload") != pack_id:
        raise InvalidArgument("upload must be packs/{pack}/uploads/{upload} of this pack",
                              reason="INVALID_NAME", metadata={"field": "upload"})
    return resource_id(f"uploads/{upload}", "uploads", "upload")


def _creator_id(name: str) -> uuid.UUID:
    """`creators/me` (the caller) or `creators/{id}`."""
    if name == "creators/me":
        return current_principal().user_id
    return resource_id(name, "creators")


class CreatorServicer(rpc.CreatorServiceServicer):
    def __init__(self, catalog: CatalogService) -> None:
        self._catalog = catalog

    async def CreateCreator(self, request: pb.CreateCreatorRequest,
                            context: grpc.aio.ServicerContext) -> pb.Creator:
        given = request.creator
        creator = await self._catalog.create_creator(
            current_principal().user_id, given.display_name, given.bio, _links(given.links))
        return creator_pb(creator)

    async def GetCreator(self, request: pb.GetCreatorRequest,
                         context: grpc.aio.ServicerContext) -> pb.Creator:
        creator, count = await self._catalog.get_creator(_creator_id(request.name))
        return creator_pb(creator, count)

    async def UpdateCreator(self, request: pb.UpdateCreatorRequest,
                            context: grpc.aio.ServicerContext) -> pb.Creator:
        caller = current_principal().user_id
        if _creator_id(request.creator.name) != caller:
            raise PermissionDenied("only your own profile can change",
                                   reason="NOT_YOUR_PROFILE")
        given = request.creator
        paths = update_paths(request.update_mask.paths, _MASKS,
                      {"display_name": bool(given.display_name), "bio": bool(given.bio),
                       "links": bool(given.links)})
        creator = await self._catalog.update_creator(
            caller, display_name=given.display_name if "display_name" in paths else None,
            bio=given.bio if "bio" in paths else None,
            links=_links(given.links) if "links" in paths else None)
        _, count = await self._catalog.get_creator(caller)
        return creator_pb(creator, count)


class PackServicer(rpc.PackServiceServicer):
    def __init__(self, catalog: CatalogService, page_tokens: PageTokens) -> None:
        self._catalog = catalog
        self._pages = page_tokens

    async def CreatePack(self, request: pb.CreatePackRequest,
                         context: grpc.aio.ServicerContext) -> pb.Pack:
        user_id = current_principal().user_id
        given = request.pack
        pack = await self._catalog.create_pack(
            user_id, request.request_id, given.title, given.description,
            _price(given) if given.price_type else Price(PriceType.FREE), tuple(given.tags))
        return pack_pb(await self._catalog.get_pack(user_id, pack.id))

    async def GetPack(self, request: pb.GetPackRequest,
                      context: grpc.aio.ServicerContext) -> pb.Pack:
        principal = current_principal()
        return pack_pb(await self._catalog.get_pack(principal.user,
                                                    resource_id(request.name, "packs")))

    async def UpdatePack(self, request: pb.UpdatePackRequest,
                         context: grpc.aio.ServicerContext) -> pb.Pack:
        user_id = current_principal().user_id
        given = request.pack
        pack_id = resource_id(given.name, "packs", "pack.name")
        paths = update_paths(request.update_mask.paths, _PACK_MASKS, {
            "title": bool(given.title), "description": bool(given.description),
            "price_type": bool(given.price_type), "price": given.HasField("price"),
            "subscription_interval": bool(given.subscription_interval),
            "tags": bool(given.tags)})
        price = None
        if paths & {"price_type", "price", "subscription_interval"}:
            current = (await self._catalog.get_pack(user_id, pack_id)).pack.price
            merged = pb.Pack(price_type=given.price_type if "price_type" in paths
                             else _PRICE_TYPE_TO_PB[current.type])
            if "subscription_interval" in paths:
                merged.subscription_interval = given.subscription_interval
            elif current.interval is not None and merged.price_type == pb.PRICE_TYPE_SUBSCRIPTION:
                merged.subscription_interval = _INTERVAL_TO_PB[current.interval]
            if "price" in paths:
                merged.price.CopyFrom(given.price)
            elif current.sold and merged.price_type == _PRICE_TYPE_TO_PB[current.type]:
                merged.price.CopyFrom(money(current.amount_minor, current.currency))
            price = _price(merged)
        view = await self._catalog.update_pack(user_id, pack_id, PackChanges(
            title=given.title if "title" in paths else None,
            description=given.description if "description" in paths else None,
            price=price, tags=tuple(given.tags) if "tags" in paths else None))
        return pack_pb(view)

    async def AddPackItem(self, request: pb.AddPackItemRequest,
                          context: grpc.aio.ServicerContext) -> pb.PackItem:
        user_id = current_principal().user_id
        pack_id = resource_id(request.parent, "packs", "parent")
        if bool(request.content) == bool(request.upload):
            raise InvalidArgument("name exactly one of content and upload",
                                  reason="INVALID_ARGUMENT", metadata={"field": "content"})
        if request.upload:
            item = await self._catalog.add_upload(user_id, pack_id,
                                                  _upload_id(request.upload, pack_id))
        else:
            item = await self._catalog.add_item(
                user_id, pack_id, resource_id(request.content, "contents", "content"))
        return item_pb(pack_id, item)

    async def CreateUpload(self, request: pb.CreateUploadRequest,
                           context: grpc.aio.ServicerContext) -> pb.Upload:
        user_id = current_principal().user_id
        pack_id = resource_id(request.parent, "packs", "parent")
        content_type = CONTENT_TYPE_FROM_PB.get(request.upload.content_type)
        if content_type is None:
            raise InvalidArgument("upload.content_type must be a ContentType",
                                  reason="INVALID_ARGUMENT",
                                  metadata={"field": "upload.content_type"})
        upload, url = await self._catalog.create_upload(user_id, pack_id, request.upload.title,
                                                        content_type)
        return pb.Upload(name=f"packs/{pack_id}/uploads/{upload.id}", title=upload.title,
                         content_type=CONTENT_TYPE_TO_PB[upload.content_type], upload_uri=url,
                         expire_time=timestamp(upload.expires_at),
                         max_size_bytes=MAX_UPLOAD_BYTES)

    async def ListPackItems(self, request: pb.ListPackItemsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListPackItemsResponse:
        pack_id = resource_id(request.parent, "packs", "parent")
        items = await self._catalog.list_items(current_principal().user, pack_id)
        return pb.ListPackItemsResponse(items=[item_pb(pack_id, i) for i in items])

    async def RemovePackItem(self, request: pb.RemovePackItemRequest,
                             context: grpc.aio.ServicerContext) -> pb.Pack:
        pack_part, sep, content = request.name.partition("/items/")
        if not sep:
            raise InvalidArgument("name must be packs/{pack}/items/{content}",
                                  reason="INVALID_NAME", metadata={"field": "name"})
        view = await self._catalog.remove_item(current_principal().user_id,
                                               resource_id(pack_part, "packs"),
                                               resource_id(f"contents/{content}", "contents"))
        return pack_pb(view)

    async def PublishPack(self, request: pb.PublishPackRequest,
                          context: grpc.aio.ServicerContext) -> pb.Pack:
        return pack_pb(await self._catalog.publish(current_principal().user_id,
                                                   resource_id(request.name, "packs")))

    async def ArchivePack(self, request: pb.ArchivePackRequest,
                          context: grpc.aio.ServicerContext) -> pb.Pack:
        principal = current_principal()
        return pack_pb(await self._catalog.archive(principal.user_id, principal.roles,
                                                   resource_id(request.name, "packs")))

    async def SearchPacks(self, request: pb.SearchPacksRequest,
                          context: grpc.aio.ServicerContext) -> pb.SearchPacksResponse:
        # The token belongs to this exact search: another query, filter or
        # order cannot reuse it.
        listing = f"catalog.SearchPacks:{request.query}\x00{request.filter}\x00{request.order_by}"
        cursor = self._pages.read(listing, request.page_token)
        try:
            offset = int(cursor.get("offset", "0"))
        except ValueError:
            offset = -1
        if not 0 <= offset <= 10_000:
            raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN",
                                  metadata={"field": "page_token"})
        limit = request.page_size or 20
        views, more = await self._catalog.search(current_principal().user,
                                                 search_query(request, offset, limit))
        token = self._pages.issue(listing, {"offset": str(offset + limit)}) if more else ""
        return pb.SearchPacksResponse(packs=[pack_pb(v) for v in views], next_page_token=token)

    async def ListRecommendations(
            self, request: pb.ListRecommendationsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListRecommendationsResponse:
        user_id = resolve_user(current_principal(), user_segment(request.parent))
        ranked = await self._catalog.recommendations(user_id, request.page_size or 10)
        return pb.ListRecommendationsResponse(recommendations=[
            pb.Recommendation(pack=pack_pb(view), reason=found.reason,
                              score=round(found.score, 4)) for view, found in ranked])

    async def ListOwnedPacks(self, request: pb.ListOwnedPacksRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListOwnedPacksResponse:
        user_id = resolve_user(current_principal(), user_segment(request.parent))
        listing = f"catalog.ListOwnedPacks:{user_id}"
        cursor = self._pages.read(listing, request.page_token)
        try:
            offset = int(cursor.get("offset", "0"))
        except ValueError:
            offset = -1
        if offset < 0:
            raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN",
                                  metadata={"field": "page_token"})
        size = request.page_size or 20
        views = await self._catalog.owned_packs(user_id)
        page = views[offset:offset + size]
        token = (self._pages.issue(listing, {"offset": str(offset + size)})
                 if len(views) > offset + size else "")
        return pb.ListOwnedPacksResponse(packs=[pack_pb(v) for v in page],
                                         next_page_token=token)


class AccessServicer(rpc.AccessServiceServicer):
    """Internal. The auth interceptor admits only callers with the service role."""

    def __init__(self, catalog: CatalogService) -> None:
        self._catalog = catalog

    async def CheckAccess(self, request: pb.CheckAccessRequest,
                          context: grpc.aio.ServicerContext) -> pb.CheckAccessResponse:
        decision = await self._catalog.check_access(
            resource_id(request.user, "users", "user"),
            resource_id(request.content, "contents", "content"))
        return pb.CheckAccessResponse(allowed=decision.allowed,
                                      reason=_ACCESS_TO_PB[decision.access],
                                      pack=f"packs/{decision.pack_id}" if decision.pack_id else "")

    async def GrantPackAccess(self, request: pb.GrantPackAccessRequest,
                              context: grpc.aio.ServicerContext) -> pb.Entitlement:
        expires = (request.expire_time.ToDatetime(tzinfo=UTC)
                   if request.HasField("expire_time") else None)
        entitlement = await self._catalog.grant_access(
            resource_id(request.user, "users", "user"), resource_id(request.pack, "packs", "pack"),
            EntitlementSource.GRANT, f"grant:{request.request_id}", expires)
        message = pb.Entitlement(user=request.user, pack=request.pack, active=True)
        if entitlement.expires_at is not None:
            message.expire_time.CopyFrom(timestamp(entitlement.expires_at))
        return message
