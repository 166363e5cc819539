"""The real world's time."""

from adapters.system.clock import SystemClock

__all__ = ["SystemClock"]
