"""OpenSearch adapters (opensearch-py's asyncio client)."""
