"""The ObjectStore contract, held by the file store (in tmp_path) and the S3
store (against a real moto server this module starts), then each adapter's own
signed-URL rules: the fs signer's checks (no server here serves the fs URLs)
and S3 presigned URLs fetched over HTTP, Range included, and behind a CDN."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from adapters.fs.object_store import FileObjectStore
from adapters.fs.signing import MEDIA_PATH, UrlSigner
from adapters.s3.object_store import S3ObjectStore
from ports.media import ObjectStore
from tests.backends import free_port
from tests.unit.fakes import FakeClock

DATA = bytes(range(256)) * 3 + b"the end"
REGION = "eu-west-1"
SECRET = b"0123456789abcdef-test-signing-secret"


def s3_store(endpoint: str, bucket: str, **kwargs: object) -> S3ObjectStore:
    return S3ObjectStore(bucket, endpoint_url=endpoint, region=REGION, access_key="testing",
                         secret_key="testing", **kwargs)  # type: ignore[arg-type]


@dataclass
class Case:
    kind: str
    store: ObjectStore
    #: The fs store's signer clock (None for S3).
    clock: FakeClock | None = None


@pytest.fixture
async def fs_case(tmp_path: Path) -> AsyncIterator[Case]:
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    signer = UrlSigner(SECRET, "https://media.waqup.test/", clock)
    store = FileObjectStore(tmp_path / "objects", signer)
    yield Case("fs", store, clock)
    await store.close()


@pytest.fixture
async def s3_case(moto_endpoint: str) -> AsyncIterator[Case]:
    """A fresh bucket per test."""
    s3 = s3_store(moto_endpoint, f"waqup-test-{uuid.uuid4().hex[:12]}", create_bucket=True)
    await s3.check()
    yield Case("s3", s3)
    await s3.close()


@pytest.fixture(params=["fs", "s3"])
def case(request: pytest.FixtureRequest) -> Case:
    return request.getfixturevalue(f"{request.param}_case")


@pytest.fixture
def store(case: Case) -> ObjectStore:
    return case.store


# -- the contract -------------------------------------------------------------


async def test_put_then_get(store: ObjectStore) -> None:
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    assert await store.get("audio/u1/c1/1.mp3") == DATA
    assert await store.get("audio/u1/c1/2.mp3") is None
    assert await store.get("audio/u1/c1") is None  # a prefix is not an object


async def test_put_replaces(store: ObjectStore) -> None:
    await store.put("audio/u1/c1/1.mp3", b"first", "audio/mpeg")
    await store.put("audio/u1/c1/1.mp3", b"second", "audio/mpeg")
    assert await store.get("audio/u1/c1/1.mp3") == b"second"
    assert await store.list_keys("audio/") == ["audio/u1/c1/1.mp3"]


async def test_empty_object(store: ObjectStore) -> None:
    await store.put("empty/0.bin", b"", "application/octet-stream")
    assert await store.get("empty/0.bin") == b""
    assert await store.exists("empty/0.bin")


async def test_exists(store: ObjectStore) -> None:
    assert not await store.exists("audio/u1/c1/1.mp3")
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    assert await store.exists("audio/u1/c1/1.mp3")
    assert not await store.exists("audio/u1/c1")


async def _seed(store: ObjectStore) -> list[str]:
    keys = ["audio/u1/c1/1.mp3", "audio/u1/c1/2.mp3", "audio/u1/c2/1.mp3",
            "audio/u1/c10/1.mp3", "audio/u2/c1/1.mp3", "other/x.txt"]
    for key in keys:
        await store.put(key, key.encode(), "application/octet-stream")
    return keys


async def test_list_keys_by_prefix(store: ObjectStore) -> None:
    keys = await _seed(store)
    assert await store.list_keys("audio/u1/c1/") == ["audio/u1/c1/1.mp3", "audio/u1/c1/2.mp3"]
    # A prefix is a string prefix, not a directory: "c1" also matches "c10".
    assert await store.list_keys("audio/u1/c1") == [
        "audio/u1/c1/1.mp3", "audio/u1/c1/2.mp3", "audio/u1/c10/1.mp3"]
    assert await store.list_keys("audio/u") == sorted(k for k in keys if k.startswith("audio/"))
    assert await store.list_keys("") == sorted(keys)
    assert await store.list_keys("nothing/") == []


async def test_delete_prefix(store: ObjectStore) -> None:
    await _seed(store)
    assert await store.delete_prefix("audio/u1/") == 4
    assert await store.list_keys("") == ["audio/u2/c1/1.mp3", "other/x.txt"]
    assert await store.get("audio/u1/c1/1.mp3") is None
    assert await store.delete_prefix("audio/u1/") == 0
    # The deleted keys can be written again.
    await store.put("audio/u1/c1/1.mp3", b"again", "audio/mpeg")
    assert await store.get("audio/u1/c1/1.mp3") == b"again"


async def test_delete_prefix_refuses_everything(store: ObjectStore) -> None:
    await store.put("keep/me.txt", b"x", "text/plain")
    with pytest.raises(ValueError):
        await store.delete_prefix("")
    assert await store.exists("keep/me.txt")


BAD_KEYS = ["", "/audio/x.mp3", "../x.mp3", "audio/../x.mp3", "audio/..", "audio/./x.mp3",
            "audio\\x.mp3", "audio/x\x00.mp3", "audio//x.mp3", "audio/", "audio/x\n.mp3",
            ".hidden/x.mp3"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"x", "text/plain")
    with pytest.raises(ValueError):
        await store.get(key)
    with pytest.raises(ValueError):
        await store.exists(key)
    with pytest.raises(ValueError):
        await store.signed_url(key, timedelta(minutes=5))


@pytest.mark.parametrize("prefix", ["/audio", "../", "audio/../", "a\\b", "a\x00", "a//"])
async def test_bad_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        await store.list_keys(prefix)
    with pytest.raises(ValueError):
        await store.delete_prefix(prefix)


async def test_unusual_but_valid_keys(store: ObjectStore) -> None:
    key = "audio/ünï cödé/a b+c=d&e?.mp3"
    await store.put(key, DATA, "audio/mpeg")
    assert await store.get(key) == DATA
    assert await store.list_keys("audio/ü") == [key]
    url = await store.signed_url(key, timedelta(seconds=60))
    assert unquote(urlsplit(url).path).endswith(key)


async def test_signed_url_names_the_object(store: ObjectStore) -> None:
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    url = await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10))
    parts = urlsplit(url)
    assert parts.scheme in {"http", "https"} and parts.netloc
    assert unquote(parts.path).endswith("/audio/u1/c1/1.mp3")
    assert parts.query
    other = await store.signed_url("audio/u1/c1/2.mp3", timedelta(minutes=10))
    assert other != url


# -- the file store's signed URLs ----------------------------------------------


def _fs(case: Case) -> tuple[FileObjectStore, UrlSigner, FakeClock]:
    assert isinstance(case.store, FileObjectStore) and case.clock is not None
    return case.store, case.store.signer, case.clock


def _url_parts(url: str) -> tuple[str, str, str]:
    """(key, expires, signature) as the media server reads them from the URL."""
    parts = urlsplit(url)
    assert parts.path.startswith(MEDIA_PATH)
    query = parse_qs(parts.query, strict_parsing=True)
    return unquote(parts.path[len(MEDIA_PATH):]), query["expires"][0], query["signature"][0]


async def test_fs_signed_url_verifies_until_it_expires(fs_case: Case) -> None:
    store, signer, clock = _fs(fs_case)
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    url = await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10))
    assert url.startswith("https://media.waqup.test/v1/media/audio/u1/c1/1.mp3?")
    key, expires, signature = _url_parts(url)
    assert key == "audio/u1/c1/1.mp3"
    assert int(expires) == int(clock.now().timestamp()) + 600
    assert signer.verify(key, expires, signature) is None
    assert store.path_for(key).read_bytes() == DATA
    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert signer.verify(key, expires, signature) is None
    clock.advance(timedelta(seconds=1))
    assert signer.verify(key, expires, signature) == "expired"


async def test_fs_signed_url_refuses_tampering(fs_case: Case) -> None:
    store, signer, _ = _fs(fs_case)
    key, expires, signature = _url_parts(
        await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10)))
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert signer.verify("audio/u1/c1/2.mp3", expires, signature) == "bad_signature"
    assert signer.verify(key, str(int(expires) + 3600), signature) == "bad_signature"
    assert signer.verify(key, expires, flipped) == "bad_signature"
    other_signer = UrlSigner(b"another-secret-of-some-length", "https://x", FakeClock())
    assert other_signer.verify(key, expires, signature) == "bad_signature"


@pytest.mark.parametrize(("key", "expires", "signature"), [
    ("audio/x.mp3", "soon", "A" * 43),
    ("audio/x.mp3", "", "A" * 43),
    ("audio/x.mp3", "-5", "A" * 43),
    ("audio/x.mp3", "1" * 40, "A" * 43),
    ("audio/x.mp3", "1893456000", "not base64!"),
    ("audio/x.mp3", "1893456000", "A" * 42),
    ("audio/x.mp3", "1893456000", "é" * 43),
    ("../etc/passwd", "1893456000", "A" * 43),
])
async def test_fs_signed_url_refuses_malformed_parts(fs_case: Case, key: str, expires: str,
                                                     signature: str) -> None:
    _, signer, _ = _fs(fs_case)
    assert signer.verify(key, expires, signature) == "malformed"


async def test_fs_signed_url_of_an_unusual_key_round_trips(fs_case: Case) -> None:
    store, signer, _ = _fs(fs_case)
    key = "audio/ünï cödé/a b+c=d&e?#.mp3"
    assert signer.verify(*_url_parts(await store.signed_url(key, timedelta(seconds=60)))) is None


async def test_fs_writes_leave_no_temporary_files(fs_case: Case) -> None:
    store, _, _ = _fs(fs_case)
    for i in range(3):
        await store.put("audio/u1/c1/1.mp3", bytes([i]) * 100, "audio/mpeg")
    directory = store.path_for("audio/u1/c1/1.mp3").parent
    assert [p.name for p in directory.iterdir()] == ["1.mp3"]
    # A write in progress (its hidden temporary file) is not an object.
    (directory / ".2.mp3.abc.tmp").write_bytes(b"partial")
    assert await store.list_keys("audio/") == ["audio/u1/c1/1.mp3"]


async def test_fs_delete_prefix_removes_emptied_directories(fs_case: Case) -> None:
    store, _, _ = _fs(fs_case)
    await _seed(store)
    await store.delete_prefix("audio/u1/")
    assert not (store.root / "audio" / "u1").exists()
    assert (store.root / "audio" / "u2" / "c1" / "1.mp3").exists()


async def test_fs_path_for_refuses_bad_keys(fs_case: Case) -> None:
    store, _, _ = _fs(fs_case)
    for key in BAD_KEYS:
        with pytest.raises(ValueError):
            store.path_for(key)


# -- the S3 store's presigned URLs ---------------------------------------------


def _s3(case: Case) -> S3ObjectStore:
    assert isinstance(case.store, S3ObjectStore)
    return case.store


async def test_s3_presigned_url_reads_the_object_with_ranges(s3_case: Case) -> None:
    store = _s3(s3_case)
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    url = await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10))
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Signature"][0]
    # (moto does not check signatures: that they are refused once expired or
    # altered is S3's part of the bargain.)
    async with httpx.AsyncClient() as http:
        full = await http.get(url)
        assert full.status_code == 200
        assert full.content == DATA
        assert full.headers["content-type"] == "audio/mpeg"
        part = await http.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == DATA[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(DATA)}"


async def test_s3_objects_are_immutable_and_downloads_are_attachments(s3_case: Case) -> None:
    store = _s3(s3_case)
    await store.put("audio/u1/c1/2.opus", DATA, "audio/ogg")
    async with httpx.AsyncClient() as http:
        played = await http.get(await store.signed_url("audio/u1/c1/2.opus",
                                                       timedelta(minutes=10)))
        assert played.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "content-disposition" not in played.headers
        url = await store.signed_url("audio/u1/c1/2.opus", timedelta(minutes=10),
                                     download_name="evening-calm.opus")
        got = await http.get(url)
        assert got.status_code == 200 and got.content == DATA
        assert got.headers["content-disposition"] == 'attachment; filename="evening-calm.opus"'


async def test_fs_download_urls_sign_the_file_name(fs_case: Case) -> None:
    store, signer, _clock = _fs(fs_case)
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    url = await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10),
                                 download_name="my-piece.mp3")
    query = parse_qs(urlsplit(url).query)
    key, expires, signature = _url_parts(url)
    assert query["download"] == ["my-piece.mp3"]
    assert signer.verify(key, expires, signature, "my-piece.mp3") is None
    assert signer.verify(key, expires, signature, "other.mp3") == "bad_signature"
    assert signer.verify(key, expires, signature) == "bad_signature"
    assert signer.verify(key, expires, signature, 'x"; evil=1') == "malformed"
    with pytest.raises(ValueError):
        await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=10),
                               download_name="../../x\r\nSet-Cookie: a=b")


async def test_s3_presigned_url_through_a_cdn(s3_case: Case, moto_endpoint: str) -> None:
    store = _s3(s3_case)
    await store.put("audio/u1/c1/1.mp3", DATA, "audio/mpeg")
    cdn = s3_store(moto_endpoint, store.bucket, public_base_url="https://cdn.waqup.test:8443")
    url = urlsplit(await cdn.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=5)))
    direct = urlsplit(await store.signed_url("audio/u1/c1/1.mp3", timedelta(minutes=5)))
    assert (url.scheme, url.netloc) == ("https", "cdn.waqup.test:8443")
    assert url.path == direct.path
    assert parse_qs(url.query).keys() == parse_qs(direct.query).keys()
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    # The path and query are the origin's: sent to the origin, they read the object.
    origin = urlsplit(moto_endpoint)
    async with httpx.AsyncClient() as http:
        response = await http.get(url._replace(scheme=origin.scheme,
                                               netloc=origin.netloc).geturl())
    assert response.content == DATA
    await cdn.close()


async def test_s3_cdn_with_a_path_prefix(moto_endpoint: str) -> None:
    cdn = s3_store(moto_endpoint, "any-bucket", public_base_url="https://cdn.waqup.test/media/")
    url = urlsplit(await cdn.signed_url("a/b.mp3", timedelta(minutes=5)))
    assert url.netloc == "cdn.waqup.test"
    assert url.path == "/media/any-bucket/a/b.mp3"
    await cdn.close()
    with pytest.raises(ValueError):
        s3_store(moto_endpoint, "b", public_base_url="cdn.waqup.test")


async def test_s3_signed_url_expiry_limits(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint, "any-bucket")
    for bad in (timedelta(0), timedelta(days=8)):
        with pytest.raises(ValueError):
            await store.signed_url("a/b.mp3", bad)
    await store.close()


async def test_s3_check_refuses_a_missing_bucket(moto_endpoint: str) -> None:
    bucket = f"waqup-missing-{uuid.uuid4().hex[:12]}"
    missing = s3_store(moto_endpoint, bucket)
    with pytest.raises(RuntimeError, match="does not exist"):
        await missing.check()
    creating = s3_store(moto_endpoint, bucket, create_bucket=True)
    await creating.check()
    await creating.check()  # idempotent
    await missing.check()  # now it exists
    await missing.close()
    await creating.close()


async def test_s3_check_refuses_an_unreachable_endpoint() -> None:
    store = s3_store(f"http://127.0.0.1:{free_port()}", "any-bucket", connect_timeout=1)
    with pytest.raises(RuntimeError, match="unreachable"):
        await store.check()
    await store.close()


async def test_s3_upload_url_takes_a_put(s3_case: Case) -> None:
    import httpx

    url = await s3_case.store.upload_url("uploads/u1/up1", timedelta(minutes=10))
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.put(url, content=DATA)).status_code == 200
    assert await s3_case.store.get("uploads/u1/up1") == DATA


async def test_fs_upload_url_is_for_uploads_only(fs_case: Case) -> None:
    store, signer, clock = _fs(fs_case)
    url = await store.upload_url("uploads/u1/up1", timedelta(minutes=10))
    assert url.startswith("https://media.waqup.test/v1/uploads/uploads/u1/up1?")
    key, expires, signature = _url_parts(url.replace("/v1/uploads/", "/v1/media/"))
    assert signer.verify_upload(key, expires, signature) is None
    # An upload signature does not read, and a read signature does not upload.
    assert signer.verify(key, expires, signature) == "bad_signature"
    read = await store.signed_url(key, timedelta(minutes=10))
    _, read_expires, read_signature = _url_parts(read)
    assert signer.verify_upload(key, read_expires, read_signature) == "bad_signature"
    clock.advance(timedelta(minutes=10))
    assert signer.verify_upload(key, expires, signature) == "expired"
