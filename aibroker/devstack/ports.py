"""Ports on this machine for the dev stack: whether one is free, and which process holds it
(read from /proc, so the message can name it). What a stack reserves is in `reservations.py`."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

LISTEN = "0A"
"""A listening socket's state in /proc/net/tcp."""


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """`pid N (command line)` of the process listening on `port`, where /proc tells it."""
    inodes = set(_listening_inodes(port, proc))
    if not inodes:
        return None
    for fd_dir in proc.glob("[0-9]*/fd"):
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in _links(fd_dir)):
            pid = fd_dir.parent.name
            try:
                raw = (fd_dir.parent / "cmdline").read_bytes()
            except OSError:
                raw = b""
            command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            return f"pid {pid} ({command[:120]})" if command else f"pid {pid}"
    return None


def _links(fd_dir: Path) -> Iterable[str]:
    """Where a process's descriptors point (those still open, and ours to read)."""
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return
    for fd in fds:
        try:
            yield str(fd.readlink())
        except OSError:
            continue


def _listening_inodes(port: int, proc: Path) -> Iterable[str]:
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                yield inode
