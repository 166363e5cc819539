"""The offline composer: the embedded writer (no network, no model weights)."""

from adapters.offline_llm.composer import OfflineComposer

__all__ = ["OfflineComposer"]
