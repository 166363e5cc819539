"""Object storage on S3 (boto3): audio files in production, behind a CDN."""

from adapters.s3.object_store import S3ObjectStore

__all__ = ["S3ObjectStore"]
