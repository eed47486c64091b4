"""Where a running service spends its CPU: py-spy attached to its process group while a benchmark sends.

``Profilers.start(groups, seconds, folder)`` runs ``py-spy record --gil`` (samples only while a thread holds
the GIL: CPU, not waiting) on every process of each group; ``finish()`` waits for them and writes, per
service, the raw collapsed stacks (``NAME.raw``, for flame graphs) and ``NAME.txt``: the functions with the
largest share of samples, inclusive and self, the cost of startup (imports) left out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.machine import group_members

RATE_HZ = 200
LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def py_spy() -> str | None:
    """py-spy beside this Python (the venv's, from the bench extra), else on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profilers:
    def __init__(self) -> None:
        self._running: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start(self, groups: dict[str, int], seconds: float, folder: Path) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
        folder.mkdir(parents=True, exist_ok=True)
        for name, group in groups.items():
            for pid in group_members(group):
                out = folder / f"{name}-{pid}.raw"
                command = [binary, "record", "--pid", str(pid), "--gil", "--rate", str(RATE_HZ),
                           "--duration", str(max(1, round(seconds))), "--format", "raw", "--output", str(out),
                           "--nonblocking"]  # fmt: skip
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self._running.append((name, out, process))

    def finish(self) -> list[Path]:
        """Wait for every profiler; one summary per service (its processes' samples together)."""
        by_service: dict[str, list[Path]] = {}
        for name, out, process in self._running:
            process.wait(timeout=120)
            if out.exists():
                by_service.setdefault(name, []).append(out)
        self._running.clear()
        written = []
        for name, files in by_service.items():
            stacks = [line for path in files for line in path.read_text().splitlines()]
            merged = files[0].with_name(f"{name}.raw")
            merged.write_text("\n".join(stacks) + "\n")
            for path in files:
                path.unlink()
            summary = merged.with_suffix(".txt")
            summary.write_text(summarise(stacks, f"{name}: py-spy --gil at {RATE_HZ} Hz"))
            written.append(summary)
        return written


def summarise(stacks: list[str], title: str, top: int = 40) -> str:
    """The functions on the most sampled stacks (inclusive: anywhere on the stack; self: at its top)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in stacks:
        match = LINE.match(line.strip())
        if match is None:
            continue
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in match["stack"].split(";")]
        if any("_find_and_load" in frame for frame in frames):  # a worker starting: imports
            continue
        count = int(match["count"])
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{title}: {total} samples ({total / RATE_HZ:.1f} CPU s)", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)] if total else []
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top // 2)] if total else []
    return "\n".join(lines) + "\n"
