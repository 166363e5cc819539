"""`waqup up` and `serve --workers N` give each worker its own ports."""

from __future__ import annotations

from services.runtime.cli import _workers


def test_each_worker_gets_the_next_grpc_and_metrics_port() -> None:
    groups = [("identity", ("identity",)), ("credits", ("credits",))]
    workers = _workers(groups, "127.0.0.1", 50051, 2,
                       {"credits": {"WAQUP_IDENTITY_TARGET": "ipv4:127.0.0.1:50051"}},
                       metrics_port=9464)
    assert [(w.context, w.port, w.env["WAQUP_METRICS_PORT"]) for w in workers] == [
        ("identity", 50051, "9464"), ("identity", 50052, "9465"),
        ("credits", 50053, "9466"), ("credits", 50054, "9467")]
    assert workers[2].env["WAQUP_IDENTITY_TARGET"] == "ipv4:127.0.0.1:50051"


def test_metrics_off_is_said_to_every_worker() -> None:
    # Explicitly 0, so that a WAQUP_METRICS_PORT inherited by the workers is not reused.
    workers = _workers([("all", ("identity", "credits"))], "127.0.0.1", 50051, 2)
    assert [w.env["WAQUP_METRICS_PORT"] for w in workers] == ["0", "0"]
