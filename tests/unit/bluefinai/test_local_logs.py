"""The local run's logs: each process's output rotated by size (LOG_MAX_MB, LOG_BACKUPS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bluefinai.processes import LogRotation, RotatingLog, pump_to_log, stop_process
from bluefinai.services import ServiceSpec, start_service
from tests.conftest import free_port


def test_the_log_rotates_before_a_write_would_pass_the_limit_and_keeps_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    log = RotatingLog(path, LogRotation(max_bytes=100, backups=2))
    for index in range(12):
        log.write(f"line {index:02d} ".encode() + b"x" * 30 + b"\n")  # 39 bytes: two lines a file
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2"]  # the oldest went
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert path.read_text().splitlines()[0].startswith("line 10")
    assert (tmp_path / "agent.log.1").read_text().startswith("line 08")
    assert (tmp_path / "agent.log.2").read_text().startswith("line 06")


def test_an_existing_log_is_appended_to_and_counts_towards_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "nginx.log"
    path.write_bytes(b"a" * 90)
    log = RotatingLog(path, LogRotation(max_bytes=100, backups=1))
    log.write(b"b" * 5)
    log.write(b"c" * 20)
    log.close()
    assert (tmp_path / "nginx.log.1").read_bytes() == b"a" * 90 + b"b" * 5
    assert path.read_bytes() == b"c" * 20


def test_with_no_backups_the_log_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    log = RotatingLog(path, LogRotation(max_bytes=10, backups=0))
    log.write(b"123456789\n")
    log.write(b"abc\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["x.log"] and path.read_bytes() == b"abc\n"


def test_a_process_output_is_pumped_into_the_rotating_log(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfor i in range(50): print(f'{i:03d}' + 'y' * 36)"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    thread = pump_to_log(process.stdout, RotatingLog(tmp_path / "p.log", LogRotation(400, 3)))
    process.wait(10)
    thread.join(10)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["p.log", "p.log.1", "p.log.2", "p.log.3"]
    kept = b"".join((tmp_path / n).read_bytes() for n in ("p.log.3", "p.log.2", "p.log.1", "p.log"))
    lines = kept.decode().splitlines()
    assert lines[-1].startswith("049") and len(lines) == 40  # 10 lines a file, the oldest file gone
    assert [int(line[:3]) for line in lines] == list(range(10, 50))


def test_a_service_started_with_rotation_writes_its_output_through_it(tmp_path: Path) -> None:
    spec = ServiceSpec("nothing", "no.such.module:app", free_port(), ())
    rotation = LogRotation(300, 20)
    process = start_service(spec, {"PATH": "/usr/bin:/bin"}, tmp_path / "svc.log", rotation=rotation)
    process.wait(30)
    stop_process(process)  # joins the pump: the whole output is in the files
    files = sorted(tmp_path.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix != ".log" else 0)
    assert len(files) > 1 and all(p.stat().st_size <= 300 for p in files)
    text = "".join(p.read_text() for p in files)
    assert "No module named 'no'" in text and text.rstrip().endswith("Reason: Worker failed to boot.")
