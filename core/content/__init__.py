"""Content: text generation for the three types, prompt templates, model calls
and their history."""
