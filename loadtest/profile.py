"""Flame graphs of the broker under load: one py-spy SVG per service.

    python -m loadtest.profile --tag before [--kafka apache] [--seconds 20] [--concurrency 32]
                               [--respond-async] [--format raw]

Starts the benchmark's stack (mock provider at 50 ms), warms it up, then drives sync chat
requests closed loop while py-spy samples each broker process for the same window. Writes
loadtest/reports/flame-<tag>-<service>.svg and prints the CPU each service spent per
request in that window. py-spy is the `[bench]` extra; it needs ptrace (as root, or
`kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtest.bench import chat_body
from loadtest.driver import closed_loop
from loadtest.procs import cpu_seconds
from loadtest.stack import bench_stack

PROFILED = ("ingress", "dispatcher", "consumer", "results")
REPORTS = Path("loadtest/reports")
SUFFIX = {"flamegraph": "svg", "raw": "folded"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True, help="names the SVGs: flame-<tag>-<service>")
    parser.add_argument("--kafka", choices=["tansu", "apache"], default="apache")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--respond-async", action="store_true", help="202 submissions (Prefer: respond-async)"
    )
    parser.add_argument(
        "--format", choices=["flamegraph", "raw"], default="flamegraph", help="raw: folded stacks"
    )
    args = parser.parse_args(argv)
    beside = Path(sys.executable).with_name("py-spy")
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    REPORTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="aibroker-profile-"))
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(
            ctx, workdir, pids, engine=args.kafka, mock_latency_ms=50.0, apis=("openai",)
        )
        url = f"{stack.url}/v1/chat/completions"
        auth = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
        if args.respond_async:
            auth["Prefer"] = "respond-async"
        body = chat_body("mock/echo")
        expect = 202 if args.respond_async else 200
        asyncio.run(closed_loop(url, body, auth, concurrency=8, total=500, expect=expect))
        samplers = {
            name: subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pids[name]),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--format",
                    args.format,
                    "--output",
                    str(REPORTS / f"flame-{args.tag}-{name}.{SUFFIX[args.format]}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in PROFILED
        }
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        run = asyncio.run(
            closed_loop(
                url,
                body,
                auth,
                concurrency=args.concurrency,
                duration_s=args.seconds,
                expect=expect,
            )
        )
        served = max(len(run.latencies), 1)
        for sampler in samplers.values():
            sampler.wait(args.seconds + 30)
        cpu = {n: (cpu_seconds(p) - before[n]) / served * 1000 for n, p in pids.items()}
    print(f"{args.kafka}: {run.summary()}")
    print("CPU ms/request: " + ", ".join(f"{n} {v:.3f}" for n, v in cpu.items()))
    for name in PROFILED:
        print(f"  {REPORTS / f'flame-{args.tag}-{name}.{SUFFIX[args.format]}'}")


if __name__ == "__main__":
    main()
