"""The LiteLLM proxy as the benchmark's point of comparison, in an environment of its own.

`make bench` builds the environment (`LITELLM_ENV`, default `.aibroker/bench-litellm`) with
`LITELLM_REQUIREMENT`, apart from the project's dependencies, and the benchmark runs the
proxy with one worker in front of the same mock provider as the broker, so that both are
measured in the same run on the same machine.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from aibroker.devstack.embedded import free_port
from aibroker.devstack.procs import stop_process

MASTER_KEY = "sk-bench-litellm"
MODEL = "mock/echo"


@dataclass(frozen=True)
class Proxy:
    url: str
    pid: int
    api_key: str = MASTER_KEY


def config(mock_url: str) -> str:
    """One model, `mock/echo`, served by the mock's OpenAI API; no database, no callbacks."""
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/echo\n"
        f"      api_base: {mock_url}/v1\n"
        "      api_key: mock\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  num_retries: 0\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )


@contextlib.contextmanager
def running(executable: Path, mock_url: str, workdir: Path) -> Iterator[Proxy]:
    """`litellm --config … --num_workers 1`, ready to serve; stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "litellm.yaml"
    path.write_text(config(mock_url))
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map at start
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    with (workdir / "litellm.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(executable), "--config", str(path), "--port", str(port), "--num_workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc, workdir / "litellm.log")
        yield Proxy(url, proc.pid)
    finally:
        stop_process(proc, timeout_s=15)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the LiteLLM proxy exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the LiteLLM proxy did not start: {log.read_text()[-2000:]}")
