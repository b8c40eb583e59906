"""The simulator's HTTP side: an OpenAI-compatible ``/v1/chat/completions`` on 127.0.0.1 (aiohttp).

Models: ``sim-<role>`` for each registered role (``register_role``): ``sim-describer``, ``sim-reasoner`` and
``sim-refiner`` play the curation stages' roles from the world's ground truth;
``sim-echo`` answers every request with a fixed short reply (for client benchmarks, no world needed).
Fault knobs (per request, random): 429 with ``Retry-After``, 500, a truncated body, a malformed reply
(content that breaks the role's format), fixed latency plus random jitter. ``GET /stats`` counts requests by
status and how many times each distinct request body was answered, so tests can prove a resumed run
repeated no answered request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from synthetic.simulator import roles
from synthetic.simulator.world import World, decode_data_url
from videorft.answers import ANSWER_RE
from videorft.profile import SimulatorConfig

_TIMESTAMPS_RE = re.compile(r"timestamps in seconds are:\s*([0-9.,\s]+)")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass
class Stats:
    by_status: Counter[int] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # body sha256 -> times answered with 200
    by_model: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"by_status": {str(k): v for k, v in self.by_status.items()}, "answered": dict(self.answered),
                "by_model": dict(self.by_model), "requests": sum(self.by_status.values()),
                "answered_total": sum(self.answered.values()),
                "answered_more_than_once": sum(1 for v in self.answered.values() if v > 1)}


def _usage(messages: list[dict[str, Any]], content: str) -> dict[str, int]:
    prompt = sum(len(json.dumps(m.get("content"))) for m in messages) // 4
    completion = max(1, len(content) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Simulator:
    def __init__(self, cfg: SimulatorConfig, world: World | None, api_key: str | None = None) -> None:
        self.cfg, self.world, self.api_key = cfg, world, api_key
        self.stats = Stats()
        self.faults = random.Random()
        self.paused = False  # tests hold new requests here, e.g. to kill a client with nothing in flight
        # how the reasoner tells which media a description is of: the describer's (deterministic) caption
        self.captions = {roles.caption_of(cfg, s): mid for mid, s in world.scripts.items()} if world else {}

    # -- role logic --
    def media(self, messages: list[dict[str, Any]]) -> tuple[list[Any], str]:
        frames, texts = [], []
        for m in messages:
            content = m.get("content")
            if isinstance(content, str):
                texts.append(content)
                continue
            for part in content or []:
                if part.get("type") == "text":
                    texts.append(part["text"])
                elif part.get("type") in ("image_url", "video_url"):
                    frames += decode_data_url(part[part["type"]]["url"])
        return frames, "\n".join(texts)

    def answer(self, role: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The assistant message for one request (``content`` and, for the reasoner, ``reasoning_content``)."""
        played = SIMULATED_ROLES[role]
        if played.needs_world and self.world is None:
            raise web.HTTPBadRequest(text="this simulator was started without a world; only sim-echo answers")
        return played.answer(self, messages)

    def malformed(self, role: str, message: dict[str, Any]) -> dict[str, Any]:
        return {"content": SIMULATED_ROLES[role].malformed}

    # -- HTTP --
    async def chat(self, request: web.Request) -> web.Response:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.stats.by_status[401] += 1
            return web.json_response({"error": {"message": "invalid api key", "type": "auth"}}, status=401)
        body = await request.read()
        try:
            payload = json.loads(body)
            model, messages = payload["model"], payload["messages"]
        except (ValueError, KeyError, TypeError):
            self.stats.by_status[400] += 1
            return web.json_response({"error": {"message": "malformed request"}}, status=400)
        role = role_of(model)
        if role is None:
            self.stats.by_status[404] += 1
            return web.json_response({"error": {"message": f"model {model!r} not found; serving "
                                                f"{served_models()}", "code": "model_not_found"}}, status=404)
        while self.paused:
            await asyncio.sleep(0.01)
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=499)  # the client went away while held: nothing was answered
        cfg = self.cfg
        delay = cfg.latency_ms + (self.faults.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0.0)
        if delay:
            await asyncio.sleep(delay / 1000)
        roll = self.faults.random()
        if roll < cfg.rate_429:
            self.stats.by_status[429] += 1
            return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                     headers={"Retry-After": f"{cfg.retry_after_s:g}"})
        if roll < cfg.rate_429 + cfg.rate_500:
            self.stats.by_status[500] += 1
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        try:
            message = await asyncio.to_thread(self.answer, role, messages) if SIMULATED_ROLES[role].blocking \
                else self.answer(role, messages)
        except web.HTTPException as exc:
            self.stats.by_status[exc.status] += 1
            return web.json_response({"error": {"message": exc.text}}, status=exc.status)
        if roll < cfg.rate_429 + cfg.rate_500 + cfg.rate_malformed:
            message = self.malformed(role, message)
        response = {
            "id": f"chatcmpl-{hashlib.sha1(body).hexdigest()[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", **message}}],
            "usage": _usage(messages, message.get("content", "") + (message.get("reasoning_content") or "")),
        }
        text = json.dumps(response)
        if roll < cfg.rate_429 + cfg.rate_500 + cfg.rate_malformed + cfg.rate_truncated:
            self.stats.by_status[-200] += 1  # answered with a cut body: the client must retry
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        self.stats.by_status[200] += 1
        self.stats.answered[hashlib.sha256(body).hexdigest()] += 1
        self.stats.by_model[model] += 1
        return web.Response(text=text, content_type="application/json")

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "videorft"}
                                                              for m in served_models()]})

    async def stats_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_dict())

    async def reset(self, request: web.Request) -> web.Response:
        self.stats = Stats()
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024 ** 2)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.stats_view)
        app.router.add_post("/stats/reset", self.reset)
        return app



# ---- the roles it plays --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulatedRole:
    """How the simulator plays one expert role (model ``sim-<role>``): ``answer`` returns the assistant message
    for a request; ``malformed`` is a reply in the wrong format, sent at ``rate_malformed``."""

    answer: Callable[[Simulator, list[dict[str, Any]]], dict[str, Any]]
    malformed: str = "I think the answer is probably the second one."
    needs_world: bool = True
    blocking: bool = True  # answered in a worker thread, so one slow request does not hold the others


SIMULATED_ROLES: dict[str, SimulatedRole] = {}


def register_role(role: str, played: SimulatedRole) -> SimulatedRole:
    """Serve ``role`` as model ``sim-<role>`` (a curation stage's expert, ``curation.stages``)."""
    if role in SIMULATED_ROLES:
        raise ValueError(f"simulated role {role!r} is already registered")
    SIMULATED_ROLES[role] = played
    return played


def role_of(model: str) -> str | None:
    role = model.removeprefix("sim-")
    return role if model.startswith("sim-") and role in SIMULATED_ROLES else None


def served_models() -> list[str]:
    return sorted(f"sim-{r}" for r in SIMULATED_ROLES)


def _echo(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "<think>Echo.</think><answer>A</answer>"}


def _reasoner(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, Any]:
    _, text = sim.media(messages)
    media_id = next((mid for caption, mid in sim.captions.items() if caption in text), None)
    question = sim.world.find_question(text, media_id)
    if question is None:
        return {"content": "I cannot find the question.", "reasoning_content": "No question found."}
    script = sim.world.scripts[question["meta"]["media_id"]]
    cot, answer = roles.reason(sim.cfg, script, question)
    return {"content": f"<answer>{answer}</answer>", "reasoning_content": cot}


def seen_media(sim: Simulator, frames: list[Any]) -> tuple[str, list[int]]:
    """The media id of a request's frames (``sim.world.scripts[id]`` is its script), and which frames they are."""
    media_id, matched = sim.world.recognise(frames)
    if media_id is None:
        raise web.HTTPBadRequest(text="no recognisable image in the request")
    return media_id, matched


def _describer(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, Any]:
    frames, text = sim.media(messages)
    media_id, matched = seen_media(sim, frames)
    script = sim.world.scripts[media_id]
    stamps = _TIMESTAMPS_RE.search(text)
    if script["kind"] == "video" and stamps:
        indices = [min(script["num_frames"] - 1, round(float(t) * script["fps"]))
                   for t in _NUMBER_RE.findall(stamps.group(1))]
    else:
        indices = matched or [0]
    return {"content": json.dumps(roles.describe(sim.cfg, script, indices))}


def _refiner(sim: Simulator, messages: list[dict[str, Any]]) -> dict[str, Any]:
    frames, text = sim.media(messages)
    media_id, _ = seen_media(sim, frames)
    script = sim.world.scripts[media_id]
    question = sim.world.find_question(text, media_id)
    thinks = _THINK_RE.findall(text)
    answers = ANSWER_RE.findall(text)
    if question is None or not thinks:
        return {"content": "<think>I cannot tell what to review.</think><answer></answer>"}
    cot = max(thinks, key=len).strip()
    initial = next((a for a in answers if a.strip()), "")
    revised, final = roles.refine(sim.cfg, script, question, cot, initial)
    return {"content": f"<think>{revised}</think>\n<answer>{final}</answer>"}


register_role("describer", SimulatedRole(_describer,
                                         malformed='{"caption": "A video", "frames": [{"timestamp": "soon"'))
register_role("reasoner", SimulatedRole(_reasoner))
register_role("refiner", SimulatedRole(_refiner))
register_role("echo", SimulatedRole(_echo, needs_world=False, blocking=False))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RunningSimulator:
    """A simulator serving from a background thread (tests, and the main job's automatic start)."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator, self.host = simulator, host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, name="expert-simulator", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._runner = web.AppRunner(self.simulator.app(), access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port).start()

        self._loop.run_until_complete(start())
        self._started.set()
        self._loop.run_forever()

    def start(self) -> RunningSimulator:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the expert simulator did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._runner is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> RunningSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(cfg: SimulatorConfig, world_root: str | None, port: int = 0,
                    api_key: str | None = None) -> RunningSimulator:
    world = World.load(world_root) if world_root else None
    return RunningSimulator(Simulator(cfg, world, api_key), port=port).start()
