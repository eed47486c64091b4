"""What every benchmark prints beside its figures: how busy the machine was while it measured."""

from __future__ import annotations

import os


def load() -> str:
    """The load average (1, 5, 15 minutes) and the number of CPUs, as one phrase."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, the fields of /proc/PID/stat after the name) of every live process; [] where /proc is absent."""
    found = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                found.append((int(entry.name), stat.read().rsplit(")", 1)[1].split()))
        except OSError:  # the process ended meanwhile
            continue
    return found


def group_members(group: int) -> list[int]:
    """The pids of process group ``group`` (a service started in its own group: its master and workers)."""
    return [pid for pid, fields in _processes() if int(fields[2]) == group]


def group_cpu_s(group: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``group``, read
    from /proc; 0 where /proc is absent."""
    tick = os.sysconf("SC_CLK_TCK")
    # fields after the name: state, ppid, pgrp, ..., utime (12), stime (13)
    total = sum(int(f[11]) + int(f[12]) for _, f in _processes() if int(f[2]) == group)
    return total / tick


def own_cpu_s() -> float:
    """CPU seconds this process (the benchmark's own senders) has used so far."""
    times = os.times()
    return times.user + times.system
