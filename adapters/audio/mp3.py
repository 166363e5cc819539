"""MP3 encoding (LAME through `lameenc`) and small PCM/MP3 helpers.

`mp3_duration` reads the duration of an MP3 from its frame headers alone (no
decoding), so a stored file can be checked cheaply: an ID3v2 tag is skipped, a
Xing/Info (or VBRI) header frame gives the frame count directly (and a LAME
tag the encoder delay and padding), otherwise every frame is walked.
"""

from __future__ import annotations

import lameenc

from ports.media import EncodedAudio

#: Sample rates MPEG audio can carry; others are resampled by LAME.
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


class LameMp3Encoder:
    """ports.media.AudioEncoder: 16-bit mono PCM to a constant-bitrate mono MP3.

    CPU-bound and synchronous like the port; callers on the event loop run it
    in a thread. A fresh LAME encoder per call, so one instance may be shared
    by threads.
    """

    def __init__(self, bitrate_kbps: int = 64, quality: int = 2) -> None:
        if not 8 <= bitrate_kbps <= 320:
            raise ValueError("bitrate_kbps must be between 8 and 320")
        if not 0 <= quality <= 9:
            raise ValueError("quality must be between 0 (best) and 9 (fastest)")
        self._bitrate = bitrate_kbps
        self._quality = quality

    def encode(self, pcm: bytes, sample_rate: int) -> EncodedAudio:
        if len(pcm) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"unsupported sample rate {sample_rate}")
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(self._bitrate)
        encoder.set_in_sample_rate(sample_rate)
        encoder.set_channels(1)
        encoder.set_quality(self._quality)
        data = bytes(encoder.encode(bytes(pcm))) + bytes(encoder.flush())
        return EncodedAudio(data=data, mime_type="audio/mpeg", extension="mp3",
                            duration_seconds=len(pcm) / 2 / sample_rate)


def silence(seconds: float, sample_rate: int) -> bytes:
    """`seconds` of 16-bit mono digital silence (rounded to whole samples)."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    return bytes(2 * round(seconds * sample_rate))


# -- MPEG audio frame headers -------------------------------------------------

# Bitrates (kbps) by [MPEG-1?][layer][index]; index 0 is "free", 15 is invalid.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# Sample rates by version bits (0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1).
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class _Frame:
    __slots__ = ("channels", "length", "mpeg1", "rate", "samples")

    def __init__(self, mpeg1: bool, rate: int, samples: int, length: int,
                 channels: int) -> None:
        self.mpeg1 = mpeg1
        self.rate = rate
        self.samples = samples
        self.length = length
        self.channels = channels


def _frame_at(data: bytes, pos: int) -> _Frame | None:
    """The frame whose header starts at `pos`, or None if there is none."""
    if pos + 4 > len(data):
        return None
    b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
    if data[pos] != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer_bits = (b1 >> 1) & 3
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values, or free format (not walkable)
    mpeg1 = version == 3
    layer = 4 - layer_bits
    rate = _RATES[version][rate_index]
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    padding = (b2 >> 1) & 1
    channels = 1 if (b3 >> 6) == 3 else 2
    if layer == 1:
        samples = 384
        length = (12 * bitrate // rate + padding) * 4
    elif layer == 2 or mpeg1:
        samples = 1152
        length = 144 * bitrate // rate + padding
    else:  # layer III, MPEG-2/2.5
        samples = 576
        length = 72 * bitrate // rate + padding
    return _Frame(mpeg1, rate, samples, length, channels)


def _id3v2_size(data: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of `data` (0 if none)."""
    if len(data) < 10 or data[:3] != b"ID3" or any(b & 0x80 for b in data[6:10]):
        return 0
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _header_frame_duration(data: bytes, pos: int, frame: _Frame) -> float | None:
    """Duration from a Xing/Info or VBRI header in the frame at `pos`, None if
    the frame carries neither (or no frame count)."""
    if frame.mpeg1:
        side_info = 17 if frame.channels == 1 else 32
    else:
        side_info = 9 if frame.channels == 1 else 17
    xing = pos + 4 + side_info
    tag = data[xing:xing + 4]
    if tag in (b"Xing", b"Info"):
        flags = int.from_bytes(data[xing + 4:xing + 8], "big")
        if not flags & 1:
            return None
        frames = int.from_bytes(data[xing + 8:xing + 12], "big")
        offset = xing + 12 + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) \
            + (4 if flags & 8 else 0)
        samples = frames * frame.samples
        # LAME tag: 9 bytes of encoder version, then 12 bits delay and 12 bits
        # padding at offset 21.
        lame = data[offset:offset + 24]
        if len(lame) == 24 and lame[:4] in (b"LAME", b"Lavf", b"Lavc", b"L3.9"):
            delay = (lame[21] << 4) | (lame[22] >> 4)
            end_padding = ((lame[22] & 0x0F) << 8) | lame[23]
            samples = max(0, samples - delay - end_padding)
        return samples / frame.rate
    vbri = pos + 4 + 32
    if data[vbri:vbri + 4] == b"VBRI":
        frames = int.from_bytes(data[vbri + 14:vbri + 18], "big")
        return frames * frame.samples / frame.rate
    return None


def mp3_duration(data: bytes) -> float:
    """Seconds of audio in an MP3 file, read from its frame headers.

    ValueError when `data` holds no MPEG audio frame. Without a Xing/Info
    header the result includes the encoder's delay and last-frame padding (a
    few tens of milliseconds), as decoders that do not read that tag play it.
    """
    data = bytes(data)
    pos = _id3v2_size(data)
    first: _Frame | None = None
    # Find the first frame: a valid header followed by another (or the end).
    while pos < len(data):
        candidate = _frame_at(data, pos)
        if candidate is not None:
            following = pos + candidate.length
            if following == len(data) or _frame_at(data, following) is not None:
                first = candidate
                break
        pos += 1
    if first is None:
        raise ValueError("no MPEG audio frame found")
    from_header = _header_frame_duration(data, pos, first)
    if from_header is not None:
        return from_header
    # A header frame without a frame count is silent: not counted.
    samples = 0 if _is_tag_frame(data, pos, first) else first.samples
    pos += first.length
    while pos + 4 <= len(data):
        frame = _frame_at(data, pos)
        if frame is None or frame.rate != first.rate:
            # Garbage between frames, or a trailing tag (ID3v1, APE): go on at the
            # next header that is followed by another one, if any.
            resynced = _resync(data, pos + 1, first.rate)
            if resynced is None:
                break
            pos, frame = resynced
        if pos + frame.length > len(data):
            break  # a truncated last frame
        samples += frame.samples
        pos += frame.length
    return samples / first.rate


def _resync(data: bytes, pos: int, rate: int) -> tuple[int, _Frame] | None:
    while pos + 4 <= len(data):
        frame = _frame_at(data, pos)
        if frame is not None and frame.rate == rate:
            following = pos + frame.length
            if following == len(data) or _frame_at(data, following) is not None:
                return pos, frame
        pos += 1
    return None


def _is_tag_frame(data: bytes, pos: int, frame: _Frame) -> bool:
    """Whether the frame at `pos` is a Xing/Info/VBRI header (silent, not audio)."""
    side_info = (17 if frame.channels == 1 else 32) if frame.mpeg1 else \
        (9 if frame.channels == 1 else 17)
    xing = data[pos + 4 + side_info:pos + 8 + side_info]
    return xing in (b"Xing", b"Info") or data[pos + 36:pos + 40] == b"VBRI"
