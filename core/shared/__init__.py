"""The shared kernel: errors, ids, events and the caller, used by every context."""
