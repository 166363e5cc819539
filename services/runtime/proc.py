"""Child processes that do not outlive the process that started them.

The kernel's parent-death signal (Linux prctl PR_SET_PDEATHSIG) does it. It is
set from inside the child, never with subprocess's preexec_fn: that forces a
plain fork() of a process running gRPC threads, whose fork handlers can abort
the child (seen: Envoy "exiting" with SIGABRT before its exec).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys

_PR_SET_PDEATHSIG = 1

#: Environment variable through which a supervisor tells a worker its pid.
PARENT_PID_ENV = "WAQUP_SUPERVISOR_PID"


def die_with_parent(expected_parent: int) -> None:
    """In a child: get SIGTERM when the parent dies (Linux; elsewhere nothing).
    If the parent is already gone, stop now."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != expected_parent:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


def dying_with_parent(command: list[str]) -> list[str]:
    """`command` run so that it gets SIGTERM when this process dies, for a
    program that cannot set it itself (Envoy): util-linux's setpriv sets it and
    execs the program (same pid). Unchanged where setpriv is missing."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command
