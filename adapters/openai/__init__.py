"""Text generation with OpenAI (or any OpenAI-compatible API) through the official SDK."""

from adapters.openai.generator import OpenAITextGenerator

__all__ = ["OpenAITextGenerator"]
