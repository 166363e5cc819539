"""Conversation: the short guided talk that gathers what a person wants created."""
