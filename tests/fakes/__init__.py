"""Test doubles that stand in for outside services (HTTP fakes)."""
