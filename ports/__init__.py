"""Interfaces (typing.Protocol) the cores need. Imports core types only."""
