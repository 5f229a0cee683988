"""The provider call alone: the lean aiohttp paths against the official `openai` and
`anthropic` SDKs, and `google-genai` (Gemini's only client here) for reference.

    python -m loadtest.bench_client [--calls 4000] [--concurrency 64] [--rounds 3]

Runs the mock provider (no latency) as its own process and calls it through each engine in
this one, rounds alternating so that both see the same machine; reports this process's CPU
per call (what the external pool spends building, sending and reading it) and calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from typing import Any

from aibroker.devstack.embedded import free_port
from aibroker.devstack.procs import stop_process
from aibroker.routes import ProviderConfig
from consumers.pool.engine import Engine
from consumers.providers.anthropic.lean import AnthropicHttpEngine
from consumers.providers.anthropic.sdk import AnthropicEngine
from consumers.providers.gemini.sdk import GeminiEngine
from consumers.providers.openai.lean import OpenAIHttpEngine
from consumers.providers.openai.sdk import OpenAICompatibleEngine
from schemas.envelopes import Kind, Request, Target

TARGET = Target(provider="mock", model="echo")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(engine: Engine, calls: int, concurrency: int) -> dict[str, float]:
    requests = [
        Request(
            id=f"req_{i}",
            tenant="bench",
            kind=Kind.CHAT,
            model="mock/echo",
            created_at=time.time(),
            body={"model": "mock/echo", "messages": [{"role": "user", "content": f"call {i}"}]},
        )
        for i in range(calls)
    ]
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            await engine.generate(request, TARGET)

    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    return {"cpu_ms_per_call": cpu / calls * 1000, "calls_per_s": calls / wall}


async def measure(base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    config = {"mock": ProviderConfig(name="mock", base_url=f"{base_url}/v1", api_key="mock")}
    claude = {
        "mock": ProviderConfig(name="mock", base_url=base_url, api_key="mock", kind="anthropic")
    }
    gemini = {"mock": ProviderConfig(name="mock", base_url=base_url, api_key="mock", kind="gemini")}
    engines: dict[str, Engine] = {
        "openai SDK (aiohttp transport)": OpenAICompatibleEngine(config),
        "lean aiohttp path": OpenAIHttpEngine(config),
        "anthropic SDK (aiohttp transport)": AnthropicEngine(claude, drop_unsupported=False),
        "lean anthropic path": AnthropicHttpEngine(claude, drop_unsupported=False),
        "google-genai SDK (no lean path)": GeminiEngine(gemini, drop_unsupported=False),
    }
    for engine in engines.values():  # warm up: connections, imports, caches
        await _round(engine, 200, args.concurrency)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            rounds[name].append(await _round(engine, args.calls, args.concurrency))
    for engine in engines.values():
        await engine.aclose()
    return {
        name: {
            "cpu_ms_per_call": round(min(r["cpu_ms_per_call"] for r in runs), 3),
            "calls_per_s": round(max(r["calls_per_s"] for r in runs), 1),
        }
        for name, runs in rounds.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, "-m", "loadtest.mock_provider", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        report = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        stop_process(mock, timeout_s=10)
    baseline = report["openai SDK (aiohttp transport)"]["cpu_ms_per_call"]
    print("| client | CPU ms per call (best round) | calls/s (best round) | CPU vs SDK |")
    print("| --- | --- | --- | --- |")
    for name, row in report.items():
        ratio = row["cpu_ms_per_call"] / baseline
        print(f"| {name} | {row['cpu_ms_per_call']} | {row['calls_per_s']} | x{ratio:.2f} |")


def _wait_listening(port: int, timeout_s: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the mock provider did not start")


if __name__ == "__main__":
    main()
