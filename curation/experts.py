"""One chat-completions client for the three expert roles (describer, reasoner, refiner).

It speaks the OpenAI protocol (OpenAI, DeepSeek, vLLM, SGLang, our simulator) over aiohttp and owns what
makes a long curation run cheap and safe:

- bounded concurrency (in-flight requests, never more than ``max_concurrency``) and optional requests- and
  tokens-per-minute limits (``aiolimiter`` token buckets);
- retries with exponential backoff and full jitter on 429, 408, 5xx, timeouts, dropped connections and
  truncated bodies, honouring ``Retry-After`` (``tenacity``); a slot is held only while a request is in
  flight, so backing-off requests do not starve the others;
- a persistent response cache, one JSON file per request key on the storage root (local or ``s3://``),
  written the moment a response arrives and shared by every worker, so a re-run or a resumed run repeats
  no call. The key is (model, messages with media by content hash and sampling spec, parameters), never
  the endpoint URL or the key;
- token and cost accounting;
- media sent as sampled frames (image parts) or as one video part, per endpoint, decoded once per
  (media, sampling spec) and only when a request actually goes out;
- a reasoning model's separate reasoning field (``reasoning_content``, or vLLM's ``reasoning``) kept.

Two kinds of failure: ``ExpertConfigError`` (no key, unreachable endpoint, key or model rejected) aborts
before the first sample is sent, with a message naming the setting; ``ExpertError`` (one request still
failing after its retries, or a 400) is returned per request and becomes a failure row upstream.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import io
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from curation.response_store import ResponseStore, open_response_cache
from videorft.media import MediaDecodeError, load_frames, load_image, local_media
from videorft.profile import ExpertConfig, role_env_var

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524, 529})


class ExpertConfigError(RuntimeError):
    """The endpoint cannot be used at all (missing setting, unreachable, key or model rejected)."""


class ExpertError(RuntimeError):
    """One request failed for good (retries exhausted, or rejected as a bad request)."""


class ResponseInvalid(ValueError):
    """Raised by a response validator: the reply arrived but cannot be used (shown to the model on repair)."""


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


# ---- accounting ----------------------------------------------------------------------------------------

@dataclass
class Usage:
    """What a client spent: requests sent and answered from cache, retries, tokens and dollars."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Completion:
    content: str
    reasoning: str | None
    finish_reason: str | None
    usage: dict[str, Any]
    model: str
    cache_key: str
    cached: bool
    attempts: int = 1
    latency_s: float = 0.0


@dataclass
class Outcome:
    """The result of one validated request, including every repair turn it took."""

    value: Any = None
    completion: Completion | None = None
    cache_keys: list[str] = field(default_factory=list)
    error: str | None = None
    repairs: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def request_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """The cache key: model, messages (media as content hash + sampling spec, never a path) and parameters."""

    def strip(part: Any) -> Any:
        if isinstance(part, dict) and part.get("type") == "media":
            return {k: part[k] for k in ("type", "data_type", "sha256", "spec")}
        if isinstance(part, dict):
            return {k: strip(v) for k, v in part.items()}
        if isinstance(part, list):
            return [strip(p) for p in part]
        return part

    payload = json.dumps({"model": model, "messages": strip(list(messages)), "params": params},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# ---- media ---------------------------------------------------------------------------------------------

class MediaEncoder:
    """Turns media references into OpenAI content parts; each (media, spec) is decoded and encoded once."""

    def __init__(self, cache_dir: str | None = None, max_items: int = 64, jpeg_quality: int = 90) -> None:
        self.cache_dir = cache_dir
        self.max_items = max_items
        self.jpeg_quality = jpeg_quality
        self._items: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.decoded = 0

    def _jpeg_part(self, array: Any) -> dict[str, Any]:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=self.jpeg_quality)
        return {"type": "image_url",
                "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()}}

    def _encode(self, ref: dict[str, Any], mode: str) -> list[dict[str, Any]]:
        spec = ref["spec"]
        if ref["data_type"] == "image":
            image = load_image(ref["uri"], max_pixels=spec["max_pixels"], min_pixels=spec["min_pixels"],
                               cache_dir=self.cache_dir)
            return [self._jpeg_part(image)]
        if mode == "video":
            uri = ref["uri"]
            if uri.startswith(("http://", "https://")):
                return [{"type": "video_url", "video_url": {"url": uri}}]
            data = Path(local_media(uri, self.cache_dir)).read_bytes()
            return [{"type": "video_url",
                     "video_url": {"url": "data:video/mp4;base64," + base64.b64encode(data).decode()}}]
        frames = load_frames(ref["uri"], frames=spec.get("frames"), fps=spec.get("fps"),
                             max_pixels=spec["max_pixels"], min_pixels=spec["min_pixels"],
                             max_frames=spec.get("max_frames", 768), cache_dir=self.cache_dir)
        return [self._jpeg_part(f) for f in frames.array]

    def parts(self, ref: dict[str, Any], mode: str) -> list[dict[str, Any]]:
        key = json.dumps([ref["sha256"], ref["spec"], mode, ref["data_type"]], sort_keys=True)
        with self._guard:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one decode per key even when several requests for one video miss together
            with self._guard:
                if key in self._items:
                    return self._items[key]
            parts = self._encode(ref, mode)
            with self._guard:
                self.decoded += 1
                self._items[key] = parts
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
                self._locks.pop(key, None)
        return parts


# ---- the client ----------------------------------------------------------------------------------------

def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _wait(retry_state: Any) -> float:
    backoff = wait_random_exponential(multiplier=0.5, max=60)(retry_state)
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    after = getattr(exc, "retry_after", None)
    if after is None:
        return backoff
    return after + random.uniform(0, 0.1 * after + 0.05)  # the server said when; spread the herd a little


def _estimate_tokens(messages: Sequence[dict[str, Any]], max_tokens: int) -> int:
    chars, images = 0, 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part.get("type") == "text":
                chars += len(part["text"])
            else:
                images += 1
    return chars // 4 + images * 258 + max_tokens


class ExpertClient:
    """An async OpenAI-compatible client for one role. Use as ``async with client: ...``."""

    def __init__(self, role: str, config: ExpertConfig, *, base_url: str | Callable[[], str] | None,
                 api_key: str | None, cache: ResponseStore | None, encoder: MediaEncoder | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.role, self.config = role, config
        self._base_url = base_url
        self._api_key = api_key
        self.cache = cache
        self.encoder = encoder or MediaEncoder()
        self.on_record = on_record
        self.usage = Usage()
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._rpm = AsyncLimiter(config.requests_per_minute, 60) if config.requests_per_minute else None
        self._tpm = AsyncLimiter(config.tokens_per_minute, 60) if config.tokens_per_minute else None
        self._ready: asyncio.Lock | None = None
        self._checked = False
        self.params: dict[str, Any] = {"temperature": config.temperature, "max_tokens": config.max_tokens}

    # -- settings --
    def check_settings(self) -> None:
        """Fail before any work when a required setting is missing; the message names the variable."""
        if self._base_url is None:
            raise ExpertConfigError(
                f"experts.{self.role}.base_url is not set: set {role_env_var(self.role, 'BASE_URL')} to the role's "
                "OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1), or enable the simulator")
        if self.config.api_key_required and not self._api_key:
            raise ExpertConfigError(
                f"no API key for the {self.role} ({self.config.model}): set {role_env_var(self.role, 'API_KEY')} "
                f"(keys are read from the environment only), or set experts.{self.role}.api_key_required: "
                "false for an endpoint without authentication")

    @property
    def base_url(self) -> str:
        url = self._base_url() if callable(self._base_url) else self._base_url
        if not url:
            self.check_settings()
        return str(url).rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def __aenter__(self) -> ExpertClient:
        self.check_settings()
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers(),
                                              json_serialize=json.dumps)
        self._slots = asyncio.Semaphore(self.config.max_concurrency)
        self._ready = asyncio.Lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def preflight(self) -> None:
        """Reach the endpoint once before the first request goes out: a wrong URL or key fails here."""
        assert self._session is not None and self._ready is not None
        async with self._ready:
            if self._checked:
                return
            url = f"{self.base_url}/models"
            try:
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ExpertConfigError(
                    f"the {self.role} endpoint {self.base_url} is unreachable ({type(exc).__name__}: {exc}); "
                    f"check {role_env_var(self.role, 'BASE_URL')} / experts.{self.role}.base_url") from exc
            if status in (401, 403):
                raise ExpertConfigError(f"the {self.role} endpoint {self.base_url} rejected the key (HTTP {status});"
                                        f" check {role_env_var(self.role, 'API_KEY')}")
            self._checked = True

    # -- one request --
    async def _materialize(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                parts: list[dict[str, Any]] = []
                for part in content:
                    if part.get("type") == "media":
                        parts += await asyncio.to_thread(self.encoder.parts, part, self.config.media)
                    else:
                        parts.append(part)
                content = parts
            out.append({**m, "content": content})
        return out

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None and self._slots is not None
        async with self._slots:
            try:
                async with self._session.post(f"{self.base_url}/chat/completions", json=payload) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}".strip(": ")) from exc
        if status in TRANSIENT_STATUS or status >= 500:
            raise _Transient(f"HTTP {status}", retry_after)
        if status in (401, 403):
            raise ExpertConfigError(f"the {self.role} endpoint rejected the key (HTTP {status}); "
                                    f"check {role_env_var(self.role, 'API_KEY')}")
        if status == 404:
            raise ExpertConfigError(f"the {self.role} endpoint {self.base_url} answered 404 for model "
                                    f"{self.config.model!r}: check {role_env_var(self.role, 'MODEL')} and "
                                    f"{role_env_var(self.role, 'BASE_URL')}; {body[:200]!r}")
        if status != 200:
            raise ExpertError(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        try:
            data = json.loads(body)
            message = data["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Transient(f"unreadable response body ({type(exc).__name__})") from exc
        if not isinstance(message, dict) or not isinstance(message.get("content") or "", str):
            raise _Transient("response without a message")
        return data

    async def chat(self, messages: Sequence[dict[str, Any]]) -> Completion:
        """One request through the cache; raises ExpertError when it keeps failing."""
        key = request_key(self.config.model, messages, self.params)
        if self.cache is not None:
            record = (await asyncio.to_thread(self.cache.get, key)) if self.cache.remote else self.cache.get(key)
            if record is not None:
                self.usage.cached += 1
                self.usage.saved_usd += self._cost(record.get("usage") or {})
                return Completion(record["content"], record.get("reasoning"), record.get("finish_reason"),
                                  record.get("usage") or {}, record.get("model", self.config.model), key, True, 0)
        if not self._checked:
            await self.preflight()
        payload = {"model": self.config.model, "messages": await self._materialize(messages), **self.params}
        started = time.monotonic()
        attempts = 0
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.config.max_retries + 1), wait=_wait,
                                               retry=retry_if_exception_type(_Transient), reraise=True):
                with attempt:
                    attempts += 1
                    if self._rpm is not None:
                        await self._rpm.acquire()
                    if self._tpm is not None:
                        need = _estimate_tokens(payload["messages"], self.config.max_tokens)
                        await self._tpm.acquire(min(need, self._tpm.max_rate))
                    data = await self._post(payload)
        except _Transient as exc:
            self.usage.failed += 1
            raise ExpertError(f"{exc.reason} after {attempts} attempt(s)") from exc
        except ExpertError:
            self.usage.failed += 1
            raise
        finally:
            self.usage.requests += attempts
            self.usage.retries += max(0, attempts - 1)
        message = data["choices"][0]["message"]
        usage = data.get("usage") or {}
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        completion = Completion(message.get("content") or "", reasoning, data["choices"][0].get("finish_reason"),
                                usage, data.get("model") or self.config.model, key, False, attempts,
                                time.monotonic() - started)
        self._account(usage)
        if self.cache is not None:
            record = {"key": key, "role": self.role, "model": completion.model, "content": completion.content,
                      "reasoning": reasoning, "finish_reason": completion.finish_reason, "usage": usage,
                      "created": int(time.time())}
            if self.cache.remote:
                await asyncio.to_thread(self.cache.put, key, record)
            else:
                self.cache.put(key, record)
        return completion

    def _cost(self, usage: dict[str, Any]) -> float:
        return (usage.get("prompt_tokens", 0) * self.config.price_input_per_mtok
                + usage.get("completion_tokens", 0) * self.config.price_output_per_mtok) / 1e6

    def _account(self, usage: dict[str, Any]) -> None:
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        details = usage.get("completion_tokens_details") or {}
        self.usage.reasoning_tokens += int(details.get("reasoning_tokens") or 0)
        self.usage.cost_usd += self._cost(usage)

    async def complete(self, messages: list[dict[str, Any]], validate: Callable[[Completion], T] | None = None,
                       repair: Callable[[str], dict[str, Any]] | None = None, max_repairs: int = 2) -> Outcome:
        """A request whose reply must pass ``validate``; an invalid reply is shown its error and re-asked
        (``repair`` builds that turn), up to ``max_repairs`` times. Never raises for one bad sample."""
        outcome = Outcome()
        convo = list(messages)
        for turn in range(max_repairs + 1):
            started = time.monotonic()
            try:
                completion = await self.chat(convo)
            except ExpertError as exc:
                outcome.error = f"{self.role} request failed: {exc}"
                return outcome
            except MediaDecodeError as exc:
                outcome.error = f"media could not be decoded: {exc}"
                return outcome
            outcome.completion = completion
            outcome.cache_keys.append(completion.cache_key)
            outcome.repairs = turn
            try:
                outcome.value = validate(completion) if validate else completion.content
                outcome.error = None
            except ResponseInvalid as exc:
                outcome.error = f"invalid {self.role} response: {exc}"
            if self.on_record is not None:
                self.on_record({"role": self.role, "key": completion.cache_key, "cached": completion.cached,
                                "attempts": completion.attempts, "latency_s": time.monotonic() - started,
                                "ok": outcome.error is None, "error": outcome.error, "messages": convo,
                                "content": completion.content, "reasoning": completion.reasoning,
                                "usage": completion.usage, "model": completion.model,
                                "ended_ns": time.time_ns()})
            if outcome.error is None or repair is None:
                return outcome
            convo = [*convo, {"role": "assistant", "content": completion.content}, repair(str(outcome.error))]
        return outcome


async def gather_bounded(items: Sequence[Any], fn: Callable[[Any], Awaitable[T]], limit: int,
                         progress: Callable[[int, int], None] | None = None) -> list[T]:
    """``fn`` over ``items`` with at most ``limit`` alive at once, results in input order."""
    gate = asyncio.Semaphore(limit)
    done = 0

    async def one(item: Any) -> T:
        nonlocal done
        async with gate:
            result = await fn(item)
        done += 1
        if progress is not None:
            progress(done, len(items))
        return result

    return list(await asyncio.gather(*(one(i) for i in items)))


def build_client(role: str, config: ExpertConfig, cache_root: str, *, media_cache: str | None = None,
                 simulator_url: str | Callable[[], str] | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> ExpertClient:
    """The one way an expert client is assembled (the Dagster resource and ``python -m curation curate``):
    the role's endpoint, or ``simulator_url`` (a URL, or a callable that starts the simulator on first use)
    when the role has none; its key from the profile (read from the environment only); the response cache
    under ``cache_root``."""
    base_url: str | Callable[[], str] | None = config.base_url
    if base_url is None and simulator_url is not None:
        base_url, config = simulator_url, config.model_copy(update={"api_key_required": False})
    key = config.api_key.get_secret_value() if config.api_key else None
    return ExpertClient(role, config, base_url=base_url, api_key=key, cache=open_response_cache(cache_root),
                        encoder=MediaEncoder(media_cache), on_record=on_record)
