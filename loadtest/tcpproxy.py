"""A TCP proxy, for faults: the chaos tests and the soak put it between the services and the
Kafka broker and kill it (every connection reset, new ones refused) to stand for a broker
restart, without the broker losing its in-memory state. With `--delay-ms`, SIGUSR1 makes it
hold every answer from upstream that long (a server answering each command late, without
slowing its throughput) and SIGUSR2 ends that.

    python -m loadtest.tcpproxy --port 19092 --to 127.0.0.1:9092 [--delay-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time


class Lag:
    """How late answers are passed on now (switched by signals)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.on = False

    def now(self) -> float:
        return self.delay_s if self.on else 0.0


async def pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lag: Lag | None = None
) -> None:
    """Copy until EOF; with `lag`, each chunk goes out `lag.now()` after it came in (a queue,
    so a late chunk does not hold back the ones behind it beyond their own delay)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + (lag.now() if lag else 0.0), data))
        queue.put_nowait((0.0, b""))

    reading = asyncio.create_task(read())
    try:
        with contextlib.suppress(ConnectionError):
            while True:
                due, data = await queue.get()
                if not data:
                    break
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
    finally:
        reading.cancel()
        writer.close()


async def serve(port: int, host: str, target_port: int, delay_s: float = 0.0) -> None:
    lag = Lag(delay_s)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, setattr, lag, "on", True)
    loop.add_signal_handler(signal.SIGUSR2, setattr, lag, "on", False)

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w, lag))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True, help="host:port")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    host, _, target = args.to.rpartition(":")
    asyncio.run(serve(args.port, host, int(target), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
