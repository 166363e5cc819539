"""Pure domain and use cases. Standard library only (enforced by import-linter)."""
