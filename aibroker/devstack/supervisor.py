"""Run service processes and restart the ones that die, with backoff, as Kubernetes would."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aibroker.devstack.procs import die_with_parent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path


CRASH_LOOP = 3
"""Deaths in a row after which a child is reported as crash-looping, with its last log lines."""


def report(text: str) -> None:
    """On the console, as the dev stack's own messages are (not a JSON log line)."""
    print(text, file=sys.stderr, flush=True)


def crash_loop_report(spec: ChildSpec, failures: int, reason: str, lines: int = 12) -> str:
    try:
        tail = spec.log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = ["(no log yet)"]
    head = f"{spec.name} is crash-looping: it died {failures} times in a row ({reason})."
    return "\n".join([head, f"last lines of {spec.log}:", *("  " + line[:300] for line in tail)])


def restart_delay(failures: int, *, base_s: float = 1.0, max_s: float = 30.0) -> float:
    """Crash-loop backoff: 1 s, 2 s, 4 s … up to 30 s."""
    return min(max_s, base_s * (1 << max(failures - 1, 0)))


@dataclass
class _Child:
    spec: ChildSpec
    proc: asyncio.subprocess.Process | None = None
    failures: int = 0


class Supervisor:
    STABLE_S = 60.0
    """A child that ran this long has its failure count reset."""

    def __init__(self, specs: list[ChildSpec], *, stop_timeout_s: float) -> None:
        self._children = [_Child(s) for s in specs]
        self._stop_timeout_s = stop_timeout_s
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        watchers = [asyncio.create_task(self._watch(child, stop)) for child in self._children]
        await stop.wait()
        self._stopping = True
        await self._terminate_all()
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    async def _watch(self, child: _Child, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            child.proc = await self._start(child.spec)
            code = await child.proc.wait()
            if self._stopping or stop.is_set():
                return
            child.failures = 1 if loop.time() - started > self.STABLE_S else child.failures + 1
            delay = restart_delay(child.failures)
            reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            log.error(
                "%s died (%s); restarting in %.0fs (log: %s)",
                child.spec.name,
                reason,
                delay,
                child.spec.log,
            )
            if child.failures >= CRASH_LOOP:
                report(crash_loop_report(child.spec, child.failures, reason))
            await asyncio.sleep(delay)

    async def _start(self, spec: ChildSpec) -> asyncio.subprocess.Process:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with spec.log.open("ab") as out:
            return await asyncio.create_subprocess_exec(
                *spec.argv,
                env=spec.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )

    async def _terminate_all(self) -> None:
        live = [c.proc for c in self._children if c.proc and c.proc.returncode is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), self._stop_timeout_s)
        except TimeoutError:
            for proc in live:
                if proc.returncode is None:
                    proc.kill()
            await asyncio.gather(*(p.wait() for p in live))
