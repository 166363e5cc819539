"""MP3 encoding and the header-only duration reader: the duration read from
frame headers matches what was encoded and what a real decoder (miniaudio)
plays, and PCM helpers are exact."""

from __future__ import annotations

import math
import struct

import miniaudio
import pytest

from adapters.audio.mp3 import LameMp3Encoder, mp3_duration, silence


def sine(seconds: float, sample_rate: int, frequency: float = 440.0) -> bytes:
    count = round(seconds * sample_rate)
    return struct.pack(f"<{count}h", *(
        int(12000 * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(count)))


def decoded_seconds(data: bytes, sample_rate: int) -> float:
    decoded = miniaudio.decode(data, nchannels=1, sample_rate=sample_rate)
    return decoded.num_frames / sample_rate


@pytest.mark.parametrize(("sample_rate", "bitrate"),
                         [(22050, 64), (44100, 64), (24000, 32), (16000, 48), (48000, 128)])
def test_encoded_duration_is_readable_from_headers(sample_rate: int, bitrate: int) -> None:
    pcm = sine(2.5, sample_rate)
    audio = LameMp3Encoder(bitrate_kbps=bitrate).encode(pcm, sample_rate)
    assert (audio.mime_type, audio.extension) == ("audio/mpeg", "mp3")
    assert audio.duration_seconds == pytest.approx(2.5)
    assert audio.data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xfa")
    assert mp3_duration(audio.data) == pytest.approx(2.5, abs=0.1)
    assert decoded_seconds(audio.data, sample_rate) == pytest.approx(2.5, abs=0.1)
    # The bitrate asked for is the bitrate written: about bitrate/8 bytes a second.
    assert len(audio.data) == pytest.approx(2.5 * bitrate * 1000 / 8, rel=0.1)


def test_default_encoding_is_64k_mono() -> None:
    audio = LameMp3Encoder().encode(sine(1.0, 22050), 22050)
    header = audio.data[:4]
    assert header[2] >> 4 == 8  # MPEG-2 layer III bitrate index 8 = 64 kbps
    assert header[3] >> 6 == 3  # channel mode: mono


def test_duration_ignores_tags_around_the_audio() -> None:
    audio = LameMp3Encoder().encode(sine(2.5, 22050), 22050).data
    # A tag whose content looks like two MPEG-1 frames: read as audio, it would
    # throw the walk off.
    body = (b"\xff\xfb\x90\xc4" + bytes(413)) * 2
    id3v2 = b"ID3\x04\x00\x00" + bytes([0, 0, len(body) >> 7, len(body) & 0x7F]) + body
    id3v1 = b"TAG" + b"\xff\xfb" * 62 + b"\x00"
    assert mp3_duration(id3v2 + audio + id3v1) == pytest.approx(mp3_duration(audio))


def test_duration_skips_garbage_between_frames() -> None:
    audio = LameMp3Encoder().encode(sine(2.5, 22050), 22050).data
    middle = len(audio) // 2
    middle = audio.index(b"\xff\xf3", middle)  # a frame boundary (the next sync word)
    dirty = audio[:middle] + b"\x00garbage\x00" + audio[middle:]
    assert mp3_duration(dirty) == pytest.approx(mp3_duration(audio))


def _xing_file(frames: int, delay: int, padding: int) -> bytes:
    """An MPEG-1 layer III mono 44.1 kHz 128 kbps stream whose first frame is a
    LAME Info header announcing `frames` frames, followed by only 3 frames."""
    header = b"\xff\xfb\x90\xc4"  # MPEG-1 L3, 128 kbps, 44100 Hz, mono
    length = 144 * 128000 // 44100  # 417 bytes
    info = bytearray(length)
    info[:4] = header
    xing = 4 + 17
    info[xing:xing + 4] = b"Info"
    info[xing + 4:xing + 8] = (1 | 2 | 4 | 8).to_bytes(4, "big")
    info[xing + 8:xing + 12] = frames.to_bytes(4, "big")
    lame = xing + 8 + 4 + 4 + 100 + 4
    info[lame:lame + 9] = b"LAME3.100"
    info[lame + 21:lame + 24] = bytes([delay >> 4, ((delay & 0xF) << 4) | (padding >> 8),
                                       padding & 0xFF])
    frame = header + bytes(length - 4)
    return bytes(info) + frame * 3


def test_duration_from_a_xing_info_header() -> None:
    data = _xing_file(frames=100, delay=576, padding=1000)
    expected = (100 * 1152 - 576 - 1000) / 44100
    assert mp3_duration(data) == pytest.approx(expected)


def test_without_a_frame_count_the_frames_are_walked() -> None:
    data = bytearray(_xing_file(frames=100, delay=0, padding=0))
    data[4 + 17 + 4:4 + 17 + 8] = (0).to_bytes(4, "big")  # no frame count
    # The Info frame is silent: only the 3 audio frames count.
    assert mp3_duration(bytes(data)) == pytest.approx(3 * 1152 / 44100)


def test_not_an_mp3() -> None:
    with pytest.raises(ValueError):
        mp3_duration(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(100))
    with pytest.raises(ValueError):
        mp3_duration(b"")


def test_encoder_refuses_half_samples() -> None:
    with pytest.raises(ValueError):
        LameMp3Encoder().encode(b"\x00\x00\x00", 22050)


def test_silence_length_is_exact() -> None:
    assert silence(1.0, 22050) == bytes(44100)
    assert len(silence(0.5, 44100)) == 44100
    assert len(silence(0.25, 22050)) == 2 * round(0.25 * 22050)
    assert silence(0, 16000) == b""
    with pytest.raises(ValueError):
        silence(-1, 16000)


def test_silence_encodes_to_its_duration() -> None:
    audio = LameMp3Encoder().encode(silence(2.5, 22050), 22050)
    assert audio.duration_seconds == 2.5
    assert mp3_duration(audio.data) == pytest.approx(2.5, abs=0.1)
