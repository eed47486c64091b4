"""What every benchmark prints beside its figures: how busy the machine was while it measured."""

from __future__ import annotations

import os


def load() -> str:
    """The load average (1, 5, 15 minutes) and the number of CPUs, as one phrase."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
