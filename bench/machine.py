"""What every benchmark prints beside its figures: how busy the machine was while it measured.

On a virtual machine the hypervisor also takes CPU time from us (``steal`` in /proc/stat): 10 to 40 % of it
during some runs here, which is most of the run-to-run spread of the latency figures. So ``load`` says
how much was stolen since its previous call too.
"""

from __future__ import annotations

import os

_last_cpu_times: list[int] = []


def cpu_times() -> list[int]:
    """The machine's CPU time so far in ticks (user, nice, system, idle, iowait, irq, softirq, steal), from
    the first line of /proc/stat; [] where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return []
    return [int(value) for value in fields[1:9]] if fields and fields[0] == "cpu" else []


def steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of the CPUs' time the hypervisor took between two ``cpu_times``; None when unknown."""
    if len(before) < 8 or len(after) < 8:
        return None
    total = sum(after) - sum(before)
    return (after[7] - before[7]) / total if total > 0 else None


def load() -> str:
    """The load average (1, 5, 15 minutes), the number of CPUs and the CPU time stolen by the hypervisor
    since the previous call (since boot at the first), as one phrase."""
    global _last_cpu_times
    one, five, fifteen = os.getloadavg()
    now = cpu_times()
    stolen = steal_share(_last_cpu_times or [0] * len(now), now)
    _last_cpu_times = now
    steal = f", {stolen:.0%} stolen by the hypervisor" if stolen is not None else ""
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs{steal}"


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
