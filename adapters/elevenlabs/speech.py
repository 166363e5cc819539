"""ports.media.SpeechSynthesizer on ElevenLabs, through the official SDK.

Audio is asked for as raw PCM (`pcm_22050` by default), so `sample_rate` is
fixed by the output format. waQup voice ids map to ElevenLabs voice ids; ""
or an id not in the map get the default voice. `rate` becomes
`voice_settings.speed`, clamped to the 0.7-1.2 the API accepts.

Errors become SpeechError: 429 is retryable after the Retry-After header (when
there is one), 5xx, timeouts and connection failures are retryable, any other
4xx is not. The SDK's own retries are off: jobs retry at the queue level. A
total deadline (`timeout`) covers the whole request, body included.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Mapping

import httpx
from elevenlabs import VoiceSettings
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.request_options import RequestOptions

from ports.media import SpeechError, Voice

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_multilingual_v2"
#: The range of `voice_settings.speed` the API accepts.
MIN_SPEED = 0.7
MAX_SPEED = 1.2
#: The id `voices()` gives the default voice when no waQup id maps to it.
DEFAULT_VOICE_KEY = "default"


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date);
    0.0 when absent or unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when is None:
        return 0.0
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


class ElevenLabsSynthesizer:
    def __init__(self, api_key: str, *, default_voice_id: str,
                 voice_ids: Mapping[str, str] | None = None,
                 voice_names: Mapping[str, str] | None = None,
                 model_id: str = DEFAULT_MODEL, base_url: str = DEFAULT_BASE_URL,
                 output_format: str = "pcm_22050", timeout: float = 60.0,
                 language: str = "en-US") -> None:
        """`voice_ids`: waQup voice id -> ElevenLabs voice id; `voice_names`: display
        names of the waQup ids (the id itself when missing)."""
        if not api_key:
            raise ValueError("an ElevenLabs API key is required")
        if not default_voice_id:
            raise ValueError("a default ElevenLabs voice id is required")
        codec, _, rate = output_format.partition("_")
        if codec != "pcm" or not rate.isdigit():
            raise ValueError(f"output_format must be raw PCM (pcm_<rate>), not {output_format!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        #: Samples per second of everything `synthesize` returns.
        self.sample_rate = int(rate)
        self._output_format = output_format
        self._model_id = model_id
        self._default_voice_id = default_voice_id
        self._voice_ids = dict(voice_ids or {})
        self._timeout = timeout
        self._voices = self._catalog(voice_names or {}, language)
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._client = AsyncElevenLabs(api_key=api_key, base_url=base_url.rstrip("/"),
                                       timeout=timeout, httpx_client=self._http)

    def _catalog(self, names: Mapping[str, str], language: str) -> list[Voice]:
        ids = list(self._voice_ids)
        # The default voice comes first.
        default = next((key for key in ids if self._voice_ids[key] == self._default_voice_id),
                       None)
        if default is None:
            default = DEFAULT_VOICE_KEY
            self._voice_ids.setdefault(default, self._default_voice_id)
            ids.insert(0, default)
        else:
            ids.remove(default)
            ids.insert(0, default)
        return [Voice(id=key, display_name=names.get(key, key), language=language,
                      provider="elevenlabs") for key in ids]

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def voice_id_for(self, voice: str) -> str:
        """The ElevenLabs voice of a waQup voice id (the default for "" or unknown)."""
        return self._voice_ids.get(voice, self._default_voice_id)

    async def synthesize(self, text: str, voice: str, rate: float) -> bytes:
        if not math.isfinite(rate) or rate <= 0:
            raise SpeechError(f"speaking rate must be a positive number, not {rate!r}",
                              retryable=False)
        if not text.strip():
            return b""
        speed = min(max(rate, MIN_SPEED), MAX_SPEED)
        options: RequestOptions = {"max_retries": 0}
        try:
            async with asyncio.timeout(self._timeout):
                stream = self._client.text_to_speech.convert(
                    self.voice_id_for(voice), text=text, model_id=self._model_id,
                    output_format=self._output_format,  # type: ignore[arg-type]
                    voice_settings=VoiceSettings(speed=speed), request_options=options)
                audio = b"".join([chunk async for chunk in stream])
        except ApiError as exc:
            raise self._api_error(exc) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SpeechError("ElevenLabs timed out", retryable=True) from exc
        except httpx.TransportError as exc:
            raise SpeechError(f"ElevenLabs unreachable: {exc!r}", retryable=True) from exc
        if not audio:
            raise SpeechError("ElevenLabs returned no audio", retryable=True)
        if len(audio) % 2:
            audio = audio[:-1]  # half a sample: not audio
        return audio

    @staticmethod
    def _api_error(exc: ApiError) -> SpeechError:
        status = exc.status_code or 0
        detail = exc.body if isinstance(exc.body, str | dict) else ""
        message = f"ElevenLabs answered {status}: {detail}"[:500]
        if status == 429:
            retry_after = parse_retry_after(_header(exc.headers, "retry-after"))
            return SpeechError(message, retryable=True, retry_after=retry_after)
        if status >= 500 or status in (408,):
            return SpeechError(message, retryable=True)
        return SpeechError(message, retryable=False)

    async def close(self) -> None:
        await self._http.aclose()
