"""The state file of a local run (`<run>/state.json`) and process identity checks.

The supervisor owns the file and rewrites it atomically on every change; `up`, `status` and
`down` (from any shell) only read it. A pid is trusted only while /proc shows the same start time
that was recorded, so a recycled pid is never signalled.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ...errors import ConfigError

STATE_FILE = "state.json"
PLAN_FILE = "plan.json"
TERMINAL = ("failed", "stopped")


def make_dir(path: str | Path, field: str) -> Path:
    """mkdir -p, or a ConfigError naming `field` (a run or model directory that cannot exist)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create directory {str(p)!r}: {e.strerror}", field,
                          "pick a writable directory (or leave it unset for the default)") from None
    return p


def write_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    path = Path(run_dir) / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:          # a torn read cannot happen (os.replace), but a hand-edited file can
        return None


def start_time(pid: int) -> int | None:
    """Kernel start time of pid (clock ticks since boot), None if there is no such live process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):          # exited, not yet reaped
        return None
    return int(fields[19])


def alive(pid: int | None, started: int | None) -> bool:
    """The process that was recorded (same pid AND start time) still runs."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def signal_group(pid: int, started: int | None, sig: int) -> bool:
    """Signal the process group led by pid (every process was started in its own session)."""
    if not alive(pid, started):
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        try:
            os.kill(pid, sig)
        except OSError:
            return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is pgid (children a process left behind included)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def wait_gone(check, timeout: float, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not check():
            return True
        time.sleep(interval)
    return not check()


def kill_recorded(state: dict[str, Any], grace: float) -> list[str]:
    """SIGTERM then SIGKILL every recorded process group still alive; returns the names it had to kill."""
    procs = [p for p in state.get("processes", []) if p.get("pid")]
    live = [p for p in procs if alive(p["pid"], p.get("started")) or group_members(p["pid"])]
    for p in live:
        signal_group(p["pid"], p.get("started"), signal.SIGTERM)

    def any_left() -> bool:
        return any(alive(p["pid"], p.get("started")) or group_members(p["pid"]) for p in live)

    if not wait_gone(any_left, grace):
        for p in live:
            for member in group_members(p["pid"]):
                try:
                    os.kill(member, signal.SIGKILL)
                except OSError:
                    pass
        wait_gone(any_left, 2.0)
    return [p["name"] for p in live]
