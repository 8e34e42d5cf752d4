"""Which process runs a long job, and whether it still does.

A job records its runner: the process id, the host, and when that process started (on
Linux the boot id and the start tick of /proc/PID/stat, so that a process id reused after
a kill or a reboot is not taken for the runner). A job whose runner is gone (killed,
crashed, the machine restarted) is no longer running, whatever its row says. A runner on
another host cannot be checked from here: it counts as alive."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Runner:
    pid: int
    host: str
    started: str  # "" where the system does not tell


def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def started(pid: int) -> str | None:
    """When process `pid` of this host started ("" when the system does not say), or None
    when there is no such process (or only its zombie)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        # "pid (command) state ppid ... starttime ...": the command may hold spaces and
        # parentheses, so fields are counted from the last ")"; starttime is field 22.
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            return None
        return f"{_boot_id()}/{fields[19]}"
    try:  # no /proc (macOS, BSD): whether the process exists, no more
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # someone else's process
    return ""


def current() -> Runner:
    pid = os.getpid()
    return Runner(pid, socket.gethostname(), started(pid) or "")


def is_gone(pid: int | None, host: str | None, marker: str | None) -> bool:
    """Whether the runner recorded as (pid, host, marker) has certainly ended: it ran on this
    host and that process no longer exists, or another process now has its id."""
    if pid is None or host != socket.gethostname():
        return False
    now = started(pid)
    if now is None:
        return True
    return bool(marker) and bool(now) and now != marker
