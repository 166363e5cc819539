"""Tracing on, in this process, with spans kept in memory (tests only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.runtime import tracing


class Spans:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def finished(self) -> list[ReadableSpan]:
        """Every span ended so far (exported first)."""
        assert tracing.flush()
        return list(self._exporter.get_finished_spans())

    def named(self, name: str, kind: SpanKind | None = None) -> ReadableSpan:
        """The one span called `name` (of `kind`, if given)."""
        [span] = [s for s in self.finished()
                  if s.name == name and (kind is None or s.kind is kind)]
        return span


@contextmanager
def recording_spans(service_name: str = "waqup-test") -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    tracing.configure(None, service_name, exporter=exporter)
    try:
        yield Spans(exporter)
    finally:
        tracing.shutdown_now()


def trace_id_of(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}"


def span_id_of(span: ReadableSpan) -> str:
    return f"{span.context.span_id:016x}"
