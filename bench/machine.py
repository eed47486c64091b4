"""What every benchmark prints beside its figures: how busy the machine was while it measured."""

from __future__ import annotations

import os


def load() -> str:
    """The load average (1, 5, 15 minutes) and the number of CPUs, as one phrase."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def group_cpu_s(group: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``group`` (a
    service started in its own group: its master and workers), read from /proc; 0 where /proc is absent."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def own_cpu_s() -> float:
    """CPU seconds this process (the benchmark's own senders) has used so far."""
    times = os.times()
    return times.user + times.system
