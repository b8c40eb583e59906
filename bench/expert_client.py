"""Expert-client throughput against a local OpenAI-compatible server with a fixed 200 ms latency.

    .venv/bin/python bench/expert_client.py [--requests 640] [--out bench/results/expert_client.json]

The server is the simulator (``sim-echo``, no world) in its own process, so its CPU is not the client's.
Compared in the same run: a sequential loop, a plain asyncio loop over the openai SDK (semaphore-bounded),
and our ``ExpertClient`` (with its persistent cache on, as in production) at concurrency 1, 8, 32, 64; the
bound is concurrency / latency. Then the same at concurrency 32 with 20% 429 (Retry-After: 1) and 10% 500:
requests delivered, lost, and throughput. Client CPU is this process's CPU time per 1000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation.experts import ExpertClient  # noqa: E402
from curation.response_store import ResponseCache  # noqa: E402
from synthetic.simulator.server import free_port  # noqa: E402
from videorft.profile import ExpertConfig  # noqa: E402

LATENCY_MS = 200


def start_server(*extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "curation.simulator", "--port", str(port), "--no-world",
                             "--latency-ms", str(LATENCY_MS), *extra], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            httpx.get(f"{base}/models", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("simulator did not start")


def messages(i: int, tag: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{tag} request {i}: please answer briefly."}]


def measure(fn: Any) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    delivered = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"delivered": delivered, "seconds": round(wall, 3), "req_per_s": round(delivered / wall, 2),
            "cpu_s_per_1000": round(cpu / max(delivered, 1) * 1000, 3)}


def ours(base: str, n: int, concurrency: int, tag: str, max_retries: int = 8) -> int:
    cfg = ExpertConfig(model="sim-echo", api_key_required=False, max_concurrency=concurrency,
                       max_retries=max_retries)
    with tempfile.TemporaryDirectory() as cache_dir:
        client = ExpertClient("reasoner", cfg, base_url=base, api_key=None, cache=ResponseCache(cache_dir))

        async def go() -> int:
            async with client:
                gate = asyncio.Semaphore(concurrency * 4)

                async def one(i: int) -> bool:
                    async with gate:
                        return (await client.complete(messages(i, tag))).ok
                return sum(await asyncio.gather(*(one(i) for i in range(n))))
        return asyncio.run(go())


def sequential(base: str, n: int, tag: str) -> int:
    done = 0
    with httpx.Client(timeout=30) as http:
        for i in range(n):
            r = http.post(f"{base}/chat/completions", json={"model": "sim-echo", "messages": messages(i, tag)})
            done += r.status_code == 200
    return done


def openai_sdk(base: str, n: int, concurrency: int, tag: str) -> int:
    from openai import AsyncOpenAI

    async def go() -> int:
        client = AsyncOpenAI(base_url=base, api_key="unused")  # default retries (2), as users run it
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            async with gate:
                try:
                    await client.chat.completions.create(model="sim-echo", messages=messages(i, tag))
                    return True
                except Exception:
                    return False
        try:
            return sum(await asyncio.gather(*(one(i) for i in range(n))))
        finally:
            await client.close()
    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "expert_client.json"))
    args = parser.parse_args()
    n = args.requests
    results: dict[str, Any] = {"latency_ms": LATENCY_MS, "requests": n, "clean": {}, "faults": {}}

    proc, base = start_server()
    try:
        results["clean"]["sequential_httpx"] = {**measure(lambda: sequential(base, min(n, 50), "seq")),
                                                "bound": 1000 / LATENCY_MS}
        for c in (1, 8, 32, 64):
            count = min(n, max(50, c * 20))
            bound = c * 1000 / LATENCY_MS
            row = measure(lambda c=c, count=count: ours(base, count, c, f"ours{c}"))
            row["bound"] = bound
            row["share_of_bound"] = round(row["req_per_s"] / bound, 3)
            results["clean"][f"videorft_c{c}"] = row
            sdk = measure(lambda c=c, count=count: openai_sdk(base, count, c, f"sdk{c}"))
            sdk["bound"] = bound
            sdk["share_of_bound"] = round(sdk["req_per_s"] / bound, 3)
            results["clean"][f"openai_sdk_asyncio_c{c}"] = sdk
            print(json.dumps({f"c{c}": {"ours": row, "openai": sdk}}), flush=True)
    finally:
        proc.terminate()
        proc.wait()

    proc, base = start_server("--rate-429", "0.2", "--retry-after-s", "1", "--rate-500", "0.1")
    try:
        faulty_n = min(n, 640)
        row = measure(lambda: ours(base, faulty_n, 32, "fault-ours"))
        row["lost"] = faulty_n - row["delivered"]
        results["faults"]["videorft_c32"] = row
        sdk = measure(lambda: openai_sdk(base, faulty_n, 32, "fault-sdk"))
        sdk["lost"] = faulty_n - sdk["delivered"]
        results["faults"]["openai_sdk_asyncio_c32"] = sdk
        results["faults"]["bound_holding_slot_during_retry_after"] = 56
        print(json.dumps(results["faults"]), flush=True)
    finally:
        proc.terminate()
        proc.wait()

    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    results["command"] = f"python bench/expert_client.py --requests {n}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
