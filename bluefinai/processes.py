"""Processes of the local run: each started in its own process group, its output through a pipe into a
file rotated by size, and stopped with all its workers.
"""

from __future__ import annotations

import os
import subprocess
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.config import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class LogRotation:
    max_bytes: int
    backups: int

    @classmethod
    def of(cls, settings: Settings) -> LogRotation:
        return cls(max(1, int(settings.log_max_mb * 1024 * 1024)), settings.log_backups)


class RotatingLog:
    """Appends to ``path``; before a write would take it past ``max_bytes`` the file becomes ``path.1``
    (``path.1`` becomes ``path.2``, ... up to ``backups``; the oldest goes). With 0 backups it starts over."""

    def __init__(self, path: Path, rotation: LogRotation) -> None:
        self.path = path
        self.rotation = rotation
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.rotation.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        backups = self.rotation.backups
        if backups > 0:
            for index in range(backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._size = 0

    def close(self) -> None:
        self._file.close()


LOG_LINE_MAX = 64 * 1024  # a longer line is written in pieces
_PUMPS: weakref.WeakKeyDictionary[subprocess.Popen[bytes], threading.Thread] = weakref.WeakKeyDictionary()


def pump_to_log(stream: IO[bytes], log: RotatingLog) -> threading.Thread:
    """A thread copying ``stream`` line by line into ``log`` until the end of the stream."""

    def _run() -> None:
        try:
            for line in iter(lambda: stream.readline(LOG_LINE_MAX), b""):
                log.write(line)
        finally:
            log.close()
            stream.close()

    thread = threading.Thread(target=_run, name=f"log:{log.path.name}", daemon=True)
    thread.start()
    return thread


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not exit in time."""
    try:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(5)
    except ProcessLookupError:
        pass
    finally:
        pump = _PUMPS.pop(process, None)
        if pump is not None:
            pump.join(5)  # the rest of its output reaches the log


def spawn(
    command: list[str],
    env: Mapping[str, str] | None,
    log_path: Path | None,
    rotation: LogRotation | None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group (so it can be stopped with all its workers)."""
    if log_path is not None and rotation is not None:
        log = RotatingLog(log_path, rotation)
        process = subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        _PUMPS[process] = pump_to_log(process.stdout, log)
        return process
    stdout = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    try:
        return subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if not isinstance(stdout, int):
            stdout.close()
