"""ports.media.ObjectStore on S3 (or anything speaking its API: MinIO, moto).

One boto3 client (thread-safe once created) serves every call; calls block,
so they run in `asyncio.to_thread`. Keys follow the same rules as the file
store (`adapters.fs.check_key`). Signed URLs are S3 presigned GETs (SigV4,
HTTP Range works as on any GET); with `public_base_url` (a CDN in front of the
bucket) their scheme and host are swapped for the CDN's, the signed path and
query kept. The CDN must forward the request to the bucket with the origin's
Host header, which SigV4 signs (CloudFront does by default).
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.fs.object_store import check_key, check_prefix

#: Longest validity of a SigV4 presigned URL.
MAX_EXPIRES_IN = timedelta(days=7)
#: Every key names one version of one object, never rewritten with other
#: content: players and CDNs may keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}

# One boto3 session for every store: creating a client from a warm session is
# cheap, from a new one it reloads the service model. Sessions are not
# thread-safe, so clients are created under a lock.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _client(**kwargs: Any) -> Any:
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    def __init__(self, bucket: str, *, endpoint_url: str | None, region: str,
                 access_key: str | None, secret_key: str | None,
                 public_base_url: str | None = None, create_bucket: bool = False,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 max_pool_connections: int = 20) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self._bucket = bucket
        self._endpoint = endpoint_url or f"https://s3.{region}.amazonaws.com"
        self._region = region
        self._create_bucket = create_bucket
        self._public = self._parse_public_base_url(public_base_url)
        config = Config(
            region_name=region,
            signature_version="s3v4",
            # A custom endpoint (MinIO, moto, a local gateway) rarely resolves
            # bucket sub-domains: address buckets by path there.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
        )
        self._client: Any = _client(
            endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config)

    @staticmethod
    def _parse_public_base_url(url: str | None) -> tuple[str, str, str] | None:
        """(scheme, netloc, path prefix) of the CDN base URL."""
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"public_base_url must be an http(s) URL: {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"public_base_url must not have a query or fragment: {url!r}")
        return parts.scheme, parts.netloc, parts.path.rstrip("/")

    @property
    def bucket(self) -> str:
        return self._bucket

    async def check(self) -> None:
        """For startup: RuntimeError when the bucket cannot be reached or does not
        exist (created instead when `create_bucket`)."""
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self._bucket)
            return
        except ClientError as exc:
            code = _error_code(exc)
            if code not in _MISSING:
                raise RuntimeError(
                    f"S3 bucket {self._bucket!r} at {self._endpoint} is not usable: "
                    f"{code or exc}") from exc
            if not self._create_bucket:
                raise RuntimeError(
                    f"S3 bucket {self._bucket!r} does not exist at {self._endpoint}") from exc
        except BotoCoreError as exc:
            raise RuntimeError(f"S3 unreachable at {self._endpoint}: {exc}") from exc
        try:
            await asyncio.to_thread(self._make_bucket)
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(
                f"could not create S3 bucket {self._bucket!r} at {self._endpoint}: {exc}"
            ) from exc

    def _make_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self._bucket}
        if self._region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou"}:
                raise

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        await asyncio.to_thread(self._client.put_object, Bucket=self._bucket, Key=key,
                                Body=bytes(data), ContentType=content_type,
                                CacheControl=IMMUTABLE)

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        with response["Body"] as body:
            return body.read()

    async def exists(self, key: str) -> bool:
        check_key(key)
        return await asyncio.to_thread(self._exists, key)

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def _keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`, sorted."""
        check_prefix(prefix)
        return sorted(await asyncio.to_thread(self._keys, prefix))

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (not "": that would
        be everything, refused with ValueError); how many were deleted."""
        if check_prefix(prefix) == "":
            raise ValueError("delete_prefix needs a non-empty prefix")
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        keys = self._keys(prefix)
        deleted = 0
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = keys[start:start + 1000]
            response = self._client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"S3 refused to delete {len(errors)} object(s) under {prefix!r}: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}")
            deleted += len(batch)
        return deleted

    async def upload_url(self, key: str, expires_in: timedelta) -> str:
        """A presigned PUT (the CDN base URL does not apply: uploads go to
        the bucket itself)."""
        check_key(key)
        if not timedelta(0) < expires_in <= MAX_EXPIRES_IN:
            raise ValueError("expires_in must be positive and at most 7 days")
        url: str = await asyncio.to_thread(
            self._client.generate_presigned_url, "put_object",
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=max(1, int(expires_in.total_seconds())))
        return url

    async def signed_url(self, key: str, expires_in: timedelta,
                         download_name: str | None = None) -> str:
        check_key(key)
        if not timedelta(0) < expires_in <= MAX_EXPIRES_IN:
            raise ValueError("expires_in must be positive and at most 7 days")
        seconds = max(1, int(expires_in.total_seconds()))
        params = {"Bucket": self._bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
        # Presigning sends nothing, but resolving credentials may (instance metadata).
        url: str = await asyncio.to_thread(
            self._client.generate_presigned_url, "get_object", Params=params,
            ExpiresIn=seconds)
        if self._public is None:
            return url
        scheme, netloc, path_prefix = self._public
        parts = urlsplit(url)
        return urlunsplit((scheme, netloc, path_prefix + parts.path, parts.query, ""))

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
