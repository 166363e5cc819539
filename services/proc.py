"""Child processes that do not outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1
# Looked up once, in the parent: the function passed as preexec_fn runs between
# fork and exec and should do as little as possible.
_prctl = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child when its parent dies
    (Linux; elsewhere it does nothing), so a killed supervisor leaves no workers
    or Envoy behind holding their ports."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
