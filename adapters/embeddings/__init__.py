"""Offline sentence embeddings (all-MiniLM-L6-v2 in numpy, no network, no torch)."""

from adapters.embeddings.minilm import DIMENSION, MiniLmEmbedder

__all__ = ["DIMENSION", "MiniLmEmbedder"]
