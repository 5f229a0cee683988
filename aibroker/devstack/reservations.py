"""Ports a stack reserves before its processes bind them, so that two stacks started in the same
instant (two checkouts, a dev stack and the suite) never pick the same one.

A reservation is a lock file per port, `<port>.lock`, in one directory that every stack on the
machine shares (`<tmp>/aibroker-ports/`), held with `flock` by the process that starts the
stack until it releases it. The kernel drops the locks of a process that dies, so a crashed
stack leaves nothing to clean up. After its lock is taken a port is also bound once, so one that
something else listens on (a stack's leftover child, another program) is refused too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path
from types import TracebackType

from aibroker.devstack.ports import holder, is_free

LAST_PORT = 65_535


class PortTaken(RuntimeError):
    """A port asked for by number is reserved by another stack or in use; the message says
    which, and by whom."""


def shared_directory() -> Path:
    """Where every stack on this machine keeps its reservations."""
    return Path(tempfile.gettempdir()) / "aibroker-ports"


class PortBook:
    """The ports one stack holds: taken by number, as the first free one from a base, or as
    one the system picks; all released by `release()` (or leaving the `with` block)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory or shared_directory()
        self._held: dict[int, tuple[int, str]] = {}
        """port → (the lock file's descriptor, what the port is for)."""

    @property
    def held(self) -> dict[int, str]:
        """What each reserved port is for."""
        return {port: what for port, (_, what) in self._held.items()}

    def exact(self, port: int, what: str, host: str = "127.0.0.1") -> int:
        """`port` itself (one a user set), or PortTaken naming who has it."""
        refused = self._take(port, what, host)
        if refused:
            raise PortTaken(f"port {port} ({what}) is {refused}")
        return port

    def first_free(self, start: int, what: str, host: str = "127.0.0.1") -> int:
        """The first port from `start` up that no stack reserved and nothing listens on."""
        for port in range(start, LAST_PORT + 1):
            if not self._take(port, what, host):
                return port
        raise PortTaken(f"no free port from {start} up for {what}")

    def any_free(self, what: str, host: str = "127.0.0.1") -> int:
        """A free port the system picks (among its ephemeral ones)."""
        while True:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port: int = probe.getsockname()[1]
            if not self._take(port, what, host):
                return port

    def release(self) -> None:
        """Give every port back (removing its lock file while still holding it, so that a
        stack waiting on the old file sees it gone and starts again)."""
        for port, (fd, _) in self._held.items():
            with contextlib.suppress(OSError):
                os.unlink(self._path(port))
            os.close(fd)
        self._held.clear()

    def __enter__(self) -> PortBook:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()

    def _path(self, port: int) -> Path:
        return self._directory / f"{port}.lock"

    def _take(self, port: int, what: str, host: str) -> str | None:
        """Reserve `port`; None when it is ours now, else why not."""
        if port in self._held:
            return f"already reserved here for {self._held[port][1]}"
        path = self._path(port)
        while True:
            fd = self._open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read(path)
                os.close(fd)
                return "reserved by another stack" + (f" ({owner})" if owner else "")
            if _same_file(fd, path):
                break
            os.close(fd)  # released and removed between our open and our lock: again
        if not is_free(port, host):
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
            who = holder(port)
            return "taken" + (f" by {who}" if who else "")
        with contextlib.suppress(OSError):  # not ours to write: another user's old file
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {what}".encode(), 0)
        self._held[port] = (fd, what)
        return None

    def _open(self, path: Path) -> int:
        if not self._directory.is_dir():
            self._directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # shared by every user of the machine
                self._directory.chmod(0o1777)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:  # another user's file: a read-only descriptor locks as well
            return os.open(path, os.O_RDONLY)


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, named = os.fstat(fd), path.stat()
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()[:200]
    except OSError:
        return ""
