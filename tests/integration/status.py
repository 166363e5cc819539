"""Reading google.rpc.Status details off a failed call."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def details(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str], list[str]]:
    """(ErrorInfo reason, ErrorInfo metadata, BadRequest fields) of a failed call."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert raw, "the error carries no google.rpc.Status"
    status = status_pb2.Status.FromString(raw)
    assert status.code == error.code().value[0]
    reason, metadata, fields = "", {}, []
    for any_detail in status.details:
        if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_detail.Unpack(info)
            assert info.domain == "waqup.app"
            reason, metadata = info.reason, dict(info.metadata)
        elif any_detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            any_detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return reason, metadata, fields
