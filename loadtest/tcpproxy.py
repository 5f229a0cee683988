"""A TCP proxy, for faults: the chaos tests and the soak put it between the services and the
Kafka broker and kill it (every connection reset, new ones refused) to stand for a broker
restart, without the broker losing its in-memory state.

    python -m loadtest.tcpproxy --port 19092 --to 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def serve(port: int, host: str, target_port: int) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, upstream_w), pipe(upstream_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True, help="host:port")
    args = parser.parse_args()
    host, _, target = args.to.rpartition(":")
    asyncio.run(serve(args.port, host, int(target)))


if __name__ == "__main__":
    main()
