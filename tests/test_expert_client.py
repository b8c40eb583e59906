"""The expert client: retries, Retry-After, the persistent cache, repairs, accounting, fail-fast settings."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from curation.experts import (
    ExpertClient,
    ExpertConfigError,
    MediaEncoder,
    ResponseInvalid,
    request_key,
)
from curation.prompts import media_ref
from curation.response_store import ResponseCache
from synthetic.simulator.server import RunningSimulator, Simulator, free_port
from videorft.profile import ExpertConfig, SimulatorConfig


class Scripted:
    """A chat endpoint that answers from a list of (status, headers, body) and records every payload."""

    def __init__(self, replies: list[tuple[int, dict[str, str], Any]]) -> None:
        self.replies, self.payloads = list(replies), []

    async def chat(self, request: web.Request) -> web.Response:
        self.payloads.append(await request.json())
        status, headers, body = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, headers=headers, text=text, content_type="application/json")

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": []})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        return app


def reply(content: str, reasoning: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    return {"choices": [{"message": message, "finish_reason": "stop"}], "model": "m",
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5}}


def config(**kw: Any) -> ExpertConfig:
    kw.setdefault("max_retries", 8)
    return ExpertConfig(model=kw.pop("model", "sim-echo"), api_key_required=False, **kw)


def client(url: str, cache: ResponseCache | None = None, role: str = "reasoner", **kw: Any) -> ExpertClient:
    return ExpertClient(role, config(**kw), base_url=url, api_key=None, cache=cache)


def ask(c: ExpertClient, n: int, prefix: str = "q") -> list[Any]:
    async def go() -> list[Any]:
        async with c:
            return await asyncio.gather(*(c.complete([{"role": "user", "content": f"{prefix}{i}"}])
                                          for i in range(n)))
    return asyncio.run(go())


def test_every_request_is_delivered_through_429_500_and_truncated_bodies(tmp_path):
    cfg = SimulatorConfig(rate_429=0.2, retry_after_s=0.02, rate_500=0.1, rate_truncated=0.05)
    with RunningSimulator(Simulator(cfg, None)) as sim:
        # 35% of attempts fail here: 20 retries make a request that fails them all a 1e-9 event, not a flake
        c = client(sim.base_url, ResponseCache(str(tmp_path / "cache")), max_concurrency=16, max_retries=20)
        outcomes = ask(c, 120)
        stats = sim.simulator.stats.to_dict()
    assert all(o.ok for o in outcomes)
    assert stats["answered_total"] == 120 and stats["answered_more_than_once"] == 0
    assert stats["by_status"].get("429", 0) > 0 and stats["by_status"].get("500", 0) > 0
    assert c.usage.retries == stats["requests"] - 120 and c.usage.failed == 0


def test_retry_after_is_honoured():
    server = Scripted([(429, {"Retry-After": "0.5"}, {"error": "slow down"}), (200, {}, reply("<answer>A</answer>"))])
    with RunningSimulator(server) as running:  # type: ignore[arg-type]
        started = time.monotonic()
        [outcome] = ask(client(running.base_url), 1)
        elapsed = time.monotonic() - started
    assert outcome.ok and len(server.payloads) == 2
    assert elapsed >= 0.5


def test_a_cached_response_is_never_requested_again(tmp_path):
    cache = ResponseCache(str(tmp_path / "cache"))
    with RunningSimulator(Simulator(SimulatorConfig(), None)) as sim:
        ask(client(sim.base_url, cache), 15)
        sent = sim.simulator.stats.to_dict()["requests"]
        again = client(sim.base_url, cache)
        outcomes = ask(again, 15)
        assert sim.simulator.stats.to_dict()["requests"] == sent == 15
    assert all(o.ok and o.completion.cached for o in outcomes)
    assert again.usage.requests == 0 and again.usage.cached == 15


def test_the_cache_key_names_media_by_content_hash_and_sampling_spec():
    a = media_ref("/data/a.mp4", "f" * 64, "video", {"fps": 1.0, "max_pixels": 100})
    moved = media_ref("s3://bucket/elsewhere.mp4", "f" * 64, "video", {"fps": 1.0, "max_pixels": 100})
    denser = media_ref("/data/a.mp4", "f" * 64, "video", {"fps": 2.0, "max_pixels": 100})
    key = lambda ref: request_key("m", [{"role": "user", "content": [ref]}], {"temperature": 0})  # noqa: E731
    assert key(a) == key(moved) != key(denser)
    assert request_key("m", [], {"temperature": 0}) != request_key("m", [], {"temperature": 1})


def test_a_reasoning_models_separate_reasoning_field_is_kept_and_tokens_and_cost_are_counted():
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "completion_tokens_details": {"reasoning_tokens": 400}}
    server = Scripted([(200, {}, reply("<answer>B</answer>", reasoning="First I look. Then B.", usage=usage))])
    with RunningSimulator(server) as running:  # type: ignore[arg-type]
        c = client(running.base_url, price_input_per_mtok=0.55, price_output_per_mtok=2.19)
        [outcome] = ask(c, 1)
    assert outcome.completion.reasoning == "First I look. Then B."
    assert c.usage.prompt_tokens == 1000 and c.usage.reasoning_tokens == 400
    assert c.usage.cost_usd == pytest.approx((1000 * 0.55 + 500 * 2.19) / 1e6)


def test_an_invalid_reply_is_shown_its_error_and_re_asked_then_recorded_not_raised():
    server = Scripted([(200, {}, reply("no tags")), (200, {}, reply("<answer>A</answer>"))])

    def validate(completion: Any) -> str:
        if "<answer>" not in completion.content:
            raise ResponseInvalid("no <answer> tags")
        return completion.content

    def repair(error: str) -> dict[str, str]:
        return {"role": "user", "content": f"fix: {error}"}

    async def go(c: ExpertClient, max_repairs: int) -> Any:
        async with c:
            return await c.complete([{"role": "user", "content": "q"}], validate, repair, max_repairs)

    with RunningSimulator(server) as running:  # type: ignore[arg-type]
        fixed = asyncio.run(go(client(running.base_url), 2))
        assert fixed.ok and fixed.repairs == 1 and len(fixed.cache_keys) == 2
        assert server.payloads[1]["messages"][-1]["content"] == "fix: invalid reasoner response: no <answer> tags"
        server.replies = [(200, {}, reply("still no tags"))]
        broken = asyncio.run(go(client(running.base_url), 2))
    assert not broken.ok and "no <answer> tags" in broken.error and broken.repairs == 2


def test_media_go_out_as_frames_or_as_one_video_part_per_endpoint(small_world):
    video = f"{small_world.root}/videos/v0000.mp4"
    ref = media_ref(video, "a" * 64, "video", {"frames": 3, "fps": None, "max_pixels": 50176, "min_pixels": 3136})
    messages = [{"role": "user", "content": [ref, {"type": "text", "text": "describe"}]}]
    server = Scripted([(200, {}, reply("<answer>A</answer>"))])
    with RunningSimulator(server) as running:  # type: ignore[arg-type]
        for mode in ("frames", "video"):
            c = ExpertClient("refiner", config(media=mode), base_url=running.base_url, api_key=None, cache=None,
                             encoder=MediaEncoder())

            async def go(c: ExpertClient = c) -> None:
                async with c:
                    await c.chat(messages)
            asyncio.run(go())
    frames_parts, video_parts = (p["messages"][0]["content"] for p in server.payloads)
    assert [p["type"] for p in frames_parts] == ["image_url"] * 3 + ["text"]
    assert frames_parts[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert [p["type"] for p in video_parts] == ["video_url", "text"]


def test_a_missing_key_fails_before_any_request_naming_the_variable():
    c = ExpertClient("reasoner", ExpertConfig(model="deepseek-reasoner"), base_url="http://127.0.0.1:9/v1",
                     api_key=None, cache=None)
    with pytest.raises(ExpertConfigError, match="VIDEORFT_REASONER_API_KEY"):
        ask(c, 1)
    no_url = ExpertClient("describer", config(), base_url=None, api_key=None, cache=None)
    with pytest.raises(ExpertConfigError, match="VIDEORFT_DESCRIBER_BASE_URL"):
        no_url.check_settings()


def test_an_unreachable_endpoint_fails_before_the_first_sample_naming_the_setting():
    c = client(f"http://127.0.0.1:{free_port()}/v1", role="describer")
    started = time.monotonic()
    with pytest.raises(ExpertConfigError, match=r"unreachable.*VIDEORFT_DESCRIBER_BASE_URL"):
        ask(c, 3)
    assert time.monotonic() - started < 10 and c.usage.requests == 0


def test_a_rejected_key_is_a_settings_error_not_a_failed_sample():
    server = Scripted([(401, {}, {"error": "bad key"})])
    with RunningSimulator(server) as running, pytest.raises(ExpertConfigError, match="VIDEORFT_REASONER_API_KEY"):  # type: ignore[arg-type]
        ask(client(running.base_url), 1)


def test_the_response_cache_works_on_s3(s3_env):
    cache = ResponseCache(f"s3://{s3_env}/storage/expert_cache")
    assert cache.remote and cache.get("ab" * 32) is None
    with RunningSimulator(Simulator(SimulatorConfig(), None)) as sim:
        ask(client(sim.base_url, cache), 3)
        again = client(sim.base_url, cache)
        assert all(o.completion.cached for o in ask(again, 3))
        assert sim.simulator.stats.to_dict()["requests"] == 3
