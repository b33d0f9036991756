"""Probes shared by the local and Slurm targets: TCP port, HTTP (status + body match), log-line
watch, and graph readiness (the frontend lists the model AND every worker is registered).

A probe knows nothing about how the thing it looks at was started. One `attempt()` is a single
bounded look that returns an `Attempt`; `wait()` repeats attempts every `interval` seconds until
`success_threshold` consecutive successes (ready), `failure_threshold` consecutive failures
(failed), the `deadline` (seconds from the first attempt) or an `abort` callback says stop. The
deadline is enforced: no attempt is started after it, and each attempt's own timeout is cut to
the time that is left.

The same state machine (`ProbeState`) serves watchers that keep probing after readiness: a
liveness probe fails after `failure_threshold` consecutive failures. A log probe with
`present=False` ("ok while this line has not appeared") turns a fatal log line into a failure.

Plain dataclasses with explicit validation keep this module cheap to import (the local target's
supervisor imports it on every `up`); `probe_from_dict` validates user-written probe specs
strictly (unknown keys are errors). It depends on the standard library and `dynamo_iac.errors`
only: the Slurm target copies both files into batch jobs. Callers parse the readiness detail
"<component>/generate: N of M workers registered": keep that wording.
"""
from __future__ import annotations

import dataclasses
import difflib
import http.client
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from ..errors import ConfigError, Problem

MAX_BODY = 1 << 20          # an HTTP probe reads at most this much of a body
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DYNAMO_PREFILL_COMPONENT = "prefill"   # dyn://<ns>.prefill.generate (all engines + mocker)
DYNAMO_DECODE_COMPONENT = "backend"    # dyn://<ns>.backend.generate (agg and decode workers)
DYNAMO_WORKER_ENDPOINT = "generate"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    outcome: str             # "ready" | "failed" | "deadline" | "aborted"
    probe: str
    attempts: int
    elapsed: float
    detail: str              # the last attempt's detail, or the abort reason

    def __str__(self) -> str:
        what = {"ready": "ready", "failed": "failed", "deadline": "deadline exceeded",
                "aborted": "aborted"}[self.outcome]
        return f"{self.probe}: {what} after {self.elapsed:.2f} s, {self.attempts} attempt(s): {self.detail}"


@dataclass
class ProbeState:
    """Consecutive success/failure counting, shared by wait() and long-running watchers."""

    success_threshold: int
    failure_threshold: int | None
    successes: int = 0
    failures: int = 0
    attempts: int = 0
    last: Attempt = field(default_factory=lambda: Attempt(False, "not probed yet"))

    def update(self, a: Attempt) -> str | None:
        """Feed one attempt; returns "ready" or "failed" once a threshold is reached."""
        self.attempts += 1
        self.last = a
        if a.ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.success_threshold:
                return "ready"
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failure_threshold is not None and self.failures >= self.failure_threshold:
                return "failed"
        return None


def _positive(name: str, value: float, cls: str, allow_zero: bool = False) -> list[Problem]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or (value < 0 if allow_zero else value <= 0):
        return [Problem(f"{cls}.{name}", f"must be a number {'>= 0' if allow_zero else '> 0'}, got {value!r}",
                        f"set {name} to a positive number of seconds")]
    return []


@dataclass(frozen=True)
class Probe:
    """Common knobs. `deadline` bounds wait(); `timeout` bounds one attempt."""

    name: str = ""
    interval: float = 0.2
    timeout: float = 2.0
    success_threshold: int = 1
    failure_threshold: int | None = None     # None: keep trying until the deadline
    deadline: float = 60.0

    def __post_init__(self) -> None:
        cls = type(self).__name__
        p = _positive("interval", self.interval, cls) + _positive("timeout", self.timeout, cls)
        p += _positive("deadline", self.deadline, cls)
        if not isinstance(self.success_threshold, int) or isinstance(self.success_threshold, bool) \
                or self.success_threshold < 1:
            p.append(Problem(f"{cls}.success_threshold", f"must be an integer >= 1, got {self.success_threshold!r}",
                             "use 1 to be ready on the first success"))
        ft = self.failure_threshold
        if ft is not None and (not isinstance(ft, int) or isinstance(ft, bool) or ft < 1):
            p.append(Problem(f"{cls}.failure_threshold", f"must be an integer >= 1 or None, got {ft!r}",
                             "use None to retry until the deadline"))
        p += self._check()
        if p:
            raise ConfigError(p)

    def _check(self) -> list[Problem]:
        return []

    @property
    def label(self) -> str:
        return self.name or self.describe()

    def describe(self) -> str:
        return type(self).__name__

    def attempt(self, timeout: float | None = None) -> Attempt:
        raise NotImplementedError

    def state(self) -> ProbeState:
        return ProbeState(self.success_threshold, self.failure_threshold)

    def wait(self, *, abort: Callable[[], str | None] | None = None,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> ProbeResult:
        """Probe until ready, failed, aborted or past the deadline (never later than that)."""
        start = clock()
        end = start + self.deadline
        st = self.state()
        while True:
            if abort is not None:
                reason = abort()
                if reason:
                    return ProbeResult(False, "aborted", self.label, st.attempts, clock() - start, reason)
            left = end - clock()
            if left <= 0:
                return ProbeResult(False, "deadline", self.label, st.attempts, clock() - start, st.last.detail)
            t0 = clock()
            verdict = st.update(self.attempt(min(self.timeout, left)))
            if verdict is not None:
                return ProbeResult(verdict == "ready", verdict, self.label, st.attempts, clock() - start,
                                   st.last.detail)
            pause = min(self.interval - (clock() - t0), end - clock())
            if pause > 0:
                sleep(pause)


# ------------------------------------------------------------------------------------ TCP
@dataclass(frozen=True)
class TcpProbe(Probe):
    host: str = "127.0.0.1"
    port: int = 0

    def _check(self) -> list[Problem]:
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            return [Problem("TcpProbe.port", f"must be 1-65535, got {self.port!r}", "give the port to connect to")]
        return []

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"

    def attempt(self, timeout: float | None = None) -> Attempt:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout or self.timeout):
                return Attempt(True, f"{self.host}:{self.port} accepts connections")
        except OSError as e:
            return Attempt(False, f"{self.host}:{self.port}: {e.strerror or e}")


# ------------------------------------------------------------------------------------ HTTP
@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(url: str, timeout: float, method: str = "GET", body: bytes | None = None,
                 headers: dict[str, str] | None = None, max_body: int = MAX_BODY) -> HttpResponse:
    """One HTTP/1.1 request whose TOTAL time (connect, send, every read) is bounded by `timeout`."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    end = time.monotonic() + timeout
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=timeout)
    try:
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        if conn.sock is not None:
            conn.sock.settimeout(max(end - time.monotonic(), 0.001))
        resp = conn.getresponse()
        chunks, size = [], 0
        while size < max_body:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"body not complete within {timeout:.2f} s")
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = resp.read1(min(65536, max_body - size)) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return HttpResponse(resp.status, b"".join(chunks))
    finally:
        conn.close()


@dataclass(frozen=True)
class HttpProbe(Probe):
    """Ok when the status is one of `status` and, if given, the body matches the regex `body`."""

    url: str = ""
    status: tuple[int, ...] = (200,)
    body: str | None = None          # regular expression searched in the decoded body
    method: str = "GET"

    def _check(self) -> list[Problem]:
        p = []
        u = urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            p.append(Problem("HttpProbe.url", f"{self.url!r} is not an http(s) URL", "e.g. http://127.0.0.1:8000/health"))
        if not self.status or any(isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599
                                  for s in self.status):
            p.append(Problem("HttpProbe.status", f"{self.status!r} is not a list of HTTP status codes", "e.g. [200]"))
        if self.body is not None:
            try:
                re.compile(self.body)
            except re.error as e:
                p.append(Problem("HttpProbe.body", f"invalid regular expression: {e}", "escape special characters"))
        return p

    def describe(self) -> str:
        return f"http {self.method} {self.url}"

    def attempt(self, timeout: float | None = None) -> Attempt:
        try:
            r = http_request(self.url, timeout or self.timeout, self.method)
        except (OSError, http.client.HTTPException, ValueError) as e:
            return Attempt(False, f"{self.url}: {type(e).__name__}: {e}")
        if r.status not in self.status:
            return Attempt(False, f"{self.url}: status {r.status}, want {'/'.join(map(str, self.status))}")
        if self.body is not None:
            text = r.body.decode("utf-8", "replace")
            if not re.search(self.body, text):
                return Attempt(False, f"{self.url}: body does not match {self.body!r}: {text[:200]!r}")
        return Attempt(True, f"{self.url}: status {r.status}")


# ------------------------------------------------------------------------------------ logs
@dataclass(frozen=True)
class LogProbe(Probe):
    """Watches a log file for a line matching `pattern`.

    present=True: ok once such a line has appeared (a readiness line).
    present=False: ok while no such line has appeared (a fatal line makes it fail; use
    failure_threshold=1 for an immediate failure).
    Reading is incremental: each attempt reads only what was appended since the last one,
    and a truncated or replaced file is read again from its start.
    """

    path: str = ""
    pattern: str = ""
    present: bool = True
    _cursor: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _check(self) -> list[Problem]:
        p = []
        if not self.path:
            p.append(Problem("LogProbe.path", "is empty", "give the log file to watch"))
        try:
            re.compile(self.pattern)
        except re.error as e:
            p.append(Problem("LogProbe.pattern", f"invalid regular expression: {e}", "escape special characters"))
        if not self.pattern:
            p.append(Problem("LogProbe.pattern", "is empty", "give a regular expression for the line"))
        return p

    def describe(self) -> str:
        return f"log {os.path.basename(self.path)} {'has' if self.present else 'lacks'} /{self.pattern}/"

    def _scan(self) -> tuple[str | None, str]:
        c = self._cursor
        if "line" in c:
            return c["line"], ""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None, f"{self.path} does not exist yet"
        except OSError as e:
            return None, f"{self.path}: {e.strerror}"
        if (st.st_ino, st.st_dev) != c.get("id") or st.st_size < c.get("offset", 0):
            c.update(id=(st.st_ino, st.st_dev), offset=0, partial=b"")
        rx = re.compile(self.pattern)
        with open(self.path, "rb") as f:
            f.seek(c["offset"])
            data = f.read(max(st.st_size - c["offset"], 0) + 65536)
        c["offset"] += len(data)
        data = c["partial"] + data
        lines = data.split(b"\n")
        c["partial"] = lines.pop()          # an unfinished last line waits for its end
        for raw in lines:
            # colour codes (Dynamo's logs have them) are neither matched nor reported
            line = ANSI_RE.sub("", raw.decode("utf-8", "replace").rstrip("\r"))
            if rx.search(line):
                c["line"] = line
                return line, ""
        return None, f"no line matching /{self.pattern}/ in {os.path.basename(self.path)} yet"

    def attempt(self, timeout: float | None = None) -> Attempt:
        line, why = self._scan()
        if self.present:
            return Attempt(line is not None, line if line is not None else why)
        if line is not None:
            return Attempt(False, f"{os.path.basename(self.path)}: {line.strip()[:300]}")
        return Attempt(True, why or "no matching line")


# ------------------------------------------------------------------------------------ graph
def component_for_role(role: str) -> str:
    """The Dynamo component a worker of this role registers its `generate` endpoint under."""
    return DYNAMO_PREFILL_COMPONENT if role == "prefill" else DYNAMO_DECODE_COMPONENT


def expected_instances(roles_and_replicas: list[tuple[str, int]]) -> dict[str, int]:
    """{component: instances} that a set of workers registers (agg/decode → backend, prefill → prefill)."""
    out: dict[str, int] = {}
    for role, replicas in roles_and_replicas:
        comp = component_for_role(role)
        out[comp] = out.get(comp, 0) + replicas
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class GraphReadyProbe(Probe):
    """A Dynamo graph is ready when its frontend lists the model on /v1/models AND /health shows
    the expected number of `generate` instances per component. `/health` alone says "healthy"
    with zero workers registered, so it is never enough on its own."""

    base_url: str = ""
    model: str = ""
    instances: dict[str, int] = field(default_factory=dict)   # {"backend": 2, "prefill": 1}
    namespace: str | None = None                               # count only this Dynamo namespace

    def _check(self) -> list[Problem]:
        p = []
        u = urlsplit(self.base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            p.append(Problem("GraphReadyProbe.base_url", f"{self.base_url!r} is not an http(s) URL",
                             "e.g. http://127.0.0.1:8000"))
        if not self.model:
            p.append(Problem("GraphReadyProbe.model", "is empty", "give the served model name"))
        for k, v in self.instances.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                p.append(Problem(f"GraphReadyProbe.instances.{k}", f"must be an integer >= 0, got {v!r}", ""))
        return p

    def describe(self) -> str:
        want = ", ".join(f"{c}×{n}" for c, n in sorted(self.instances.items()))
        return f"graph at {self.base_url} serves {self.model!r} with {want or 'no workers'}"

    def registered(self, health: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        for inst in (health.get("instances") or []) if isinstance(health, dict) else []:
            if not isinstance(inst, dict) or inst.get("endpoint") != DYNAMO_WORKER_ENDPOINT:
                continue
            if self.namespace is not None and inst.get("namespace") != self.namespace:
                continue
            comp = str(inst.get("component"))
            counts[comp] = counts.get(comp, 0) + 1
        return counts

    def attempt(self, timeout: float | None = None) -> Attempt:
        budget = timeout or self.timeout
        end = time.monotonic() + budget
        base = self.base_url.rstrip("/")
        try:
            models = http_request(f"{base}/v1/models", budget)
            health = http_request(f"{base}/health", max(end - time.monotonic(), 0.001))
        except (OSError, http.client.HTTPException, ValueError) as e:
            return Attempt(False, f"frontend {base} not answering: {type(e).__name__}: {e}")
        missing: list[str] = []
        try:
            ids = [m.get("id") for m in models.json().get("data", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            ids = []
        if models.status != 200 or self.model not in ids:
            missing.append(f"model {self.model!r} not listed on /v1/models (listed: {ids or 'none'})")
        try:
            got = self.registered(health.json())
        except ValueError:
            got = {}
        for comp, want in sorted(self.instances.items()):
            have = got.get(comp, 0)
            if have < want:
                missing.append(f"{comp}/{DYNAMO_WORKER_ENDPOINT}: {have} of {want} workers registered")
        if missing:
            return Attempt(False, "; ".join(missing))
        regs = ", ".join(f"{c}×{got.get(c, 0)}" for c in sorted(self.instances))
        return Attempt(True, f"model {self.model!r} listed; registered {regs or 'no workers'}")


# ------------------------------------------------------------------------------------ specs
PROBE_TYPES: dict[str, type[Probe]] = {"tcp": TcpProbe, "http": HttpProbe, "log": LogProbe, "graph": GraphReadyProbe}


def probe_from_dict(spec: dict[str, Any], path: str = "probe") -> Probe:
    """Build a probe from a user-written mapping: {"type": "http", "url": ..., "deadline": 30}."""
    if not isinstance(spec, dict):
        raise ConfigError(f"expected a mapping, got {type(spec).__name__}", path, "write e.g. {type: tcp, port: 8000}")
    kind = spec.get("type")
    if kind not in PROBE_TYPES:
        raise ConfigError(f"unknown probe type {kind!r}", f"{path}.type", f"use one of {', '.join(PROBE_TYPES)}")
    cls = PROBE_TYPES[kind]
    allowed = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    problems = []
    for k in spec:
        if k != "type" and k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it"
            problems.append(Problem(f"{path}.{k}", "unknown field", fix))
    if problems:
        raise ConfigError(problems)
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if "status" in kwargs and isinstance(kwargs["status"], (list, int)):
        kwargs["status"] = tuple(kwargs["status"]) if isinstance(kwargs["status"], list) else (kwargs["status"],)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError([Problem(f"{path}.{p.path.split('.', 1)[-1]}", p.message, p.fix)
                           for p in e.problems]) from None
    except TypeError as e:
        raise ConfigError(str(e), path, "check the field types") from None


# ------------------------------------------------------------------------------------ per-component
# Log lines after which a process is not coming back even if it lingers: failure probes every
# target adds to each process (the worker one is Python's uncaught-exception header, which an
# engine that swallowed its crash and hangs still writes).
DEFAULT_FAILURE_PATTERNS: dict[str, tuple[str, ...]] = {
    "any": (r"panicked at ", r"Fatal Python error"),
    "worker": (r"^Traceback \(most recent call last\):",),
}
SPEC_TYPES = ("tcp", "http", "log")
SPEC_COMMON = ("name", "interval", "timeout", "success_threshold", "failure_threshold", "deadline")
SPEC_FIELDS: dict[str, tuple[str, ...]] = {"tcp": ("port",), "http": ("path", "port", "status", "body", "method"),
                                           "log": ("pattern",)}
# a tcp/http failure probe is a liveness probe: a few misses in a row, not one
LIVENESS_FAILURES = 3


def default_failure_patterns(kind: str) -> tuple[str, ...]:
    return DEFAULT_FAILURE_PATTERNS["any"] + DEFAULT_FAILURE_PATTERNS.get(kind, ())


def probe_from_spec(spec: dict[str, Any], *, when: str, host: str, port: int | None, log: str,
                    deadline: float, path: str = "probe") -> Probe:
    """A target-neutral probe spec bound to one process: where it runs (host), its own port (the
    default of tcp/http probes) and its log file. `when` is "ready" (must pass before the graph is
    ready) or "fail" (must never fire: a log line that must not appear, a port/URL that must keep
    answering once the graph is ready)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"expected a mapping, got {type(spec).__name__}", path,
                          "write e.g. {type: log, pattern: 'model loaded'}")
    kind = spec.get("type")
    if kind not in SPEC_TYPES:
        raise ConfigError(f"unknown probe type {kind!r}", f"{path}.type", f"use one of {', '.join(SPEC_TYPES)}")
    allowed = ("type",) + SPEC_COMMON + SPEC_FIELDS[kind]
    bad = []
    for k in spec:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            bad.append(Problem(f"{path}.{k}", f"unknown field of a {kind} probe",
                               f"did you mean {close[0]!r}?" if close else f"use {', '.join(allowed)}"))
    if bad:
        raise ConfigError(bad)
    d: dict[str, Any] = {k: spec[k] for k in SPEC_COMMON if k in spec}
    d.setdefault("deadline", deadline)
    if kind == "log":
        d.update(type="log", path=log, pattern=spec.get("pattern", ""), present=when == "ready")
        if when == "fail":
            d.setdefault("failure_threshold", 1)
        return probe_from_dict(d, path)
    p = spec.get("port", port)
    if p is None:
        raise ConfigError("this component has no port of its own to probe", f"{path}.port",
                          "give the port, e.g. port: 9090")
    if when == "fail":
        d.setdefault("failure_threshold", LIVENESS_FAILURES)
    if kind == "tcp":
        d.update(type="tcp", host=host, port=p)
        return probe_from_dict(d, path)
    url_path = spec.get("path", "/")
    if not isinstance(url_path, str) or not url_path.startswith("/"):
        raise ConfigError(f"{url_path!r} is not a URL path", f"{path}.path", "start it with /, e.g. /health")
    if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
        raise ConfigError(f"must be 1-65535, got {p!r}", f"{path}.port", "give the port to connect to")
    d.update(type="http", url=f"http://{host}:{p}{url_path}",
             **{k: spec[k] for k in ("status", "body", "method") if k in spec})
    return probe_from_dict(d, path)


@dataclass
class _Member:
    owner: str                 # the process / srun step the probe looks at
    when: str                  # "ready" | "fail"
    probe: Probe
    state: ProbeState
    passive: bool              # a tcp/http failure probe: only checked once the graph is ready
    due: float = 0.0
    done: bool = False


class ProbeSet:
    """The per-process probes of one run, polled by the local supervisor and the Slurm job probe.

    Entries are JSON-able mappings {owner, when, spec, host, port, log, deadline} (see
    probe_from_spec). `poll(ready)` runs the probes that are due (each at its own interval) and
    returns (owner, reason) for the first failure: a failure probe that fired, or a readiness
    probe that failed or missed its deadline (counted from the set's creation)."""

    def __init__(self, entries: list[dict[str, Any]], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start = clock()
        self.members: list[_Member] = []
        for i, e in enumerate(entries):
            p = probe_from_spec(e["spec"], when=e["when"], host=e.get("host", "127.0.0.1"), port=e.get("port"),
                                log=e.get("log", ""), deadline=e.get("deadline", 60.0),
                                path=e.get("where", f"probes[{i}]"))
            self.members.append(_Member(e["owner"], e["when"], p, p.state(),
                                        e["when"] == "fail" and not isinstance(p, LogProbe)))

    @property
    def pending(self) -> list[str]:
        """Readiness probes not passed yet, as 'owner: probe'."""
        return [f"{m.owner}: {m.probe.label}" for m in self.members if m.when == "ready" and not m.done]

    @property
    def passed(self) -> list[str]:
        return [f"{m.owner}: {m.probe.label}" for m in self.members if m.when == "ready" and m.done]

    def poll(self, ready: bool = False) -> tuple[str, str] | None:
        now = self.clock()
        for m in self.members:
            if m.done or now < m.due or (m.passive and not ready):
                continue
            m.due = now + m.probe.interval
            left = self.start + m.probe.deadline - now
            if m.when == "ready" and left <= 0:
                return m.owner, (f"did not pass its readiness probe {m.probe.label!r} within its "
                                 f"{m.probe.deadline:g} s deadline ({m.state.last.detail})")
            verdict = m.state.update(m.probe.attempt(min(m.probe.timeout, left) if m.when == "ready" else None))
            if verdict == "failed":
                if m.when == "fail":
                    return m.owner, f"tripped its failure probe {m.probe.label!r}: {m.state.last.detail}"
                return m.owner, f"failed its readiness probe {m.probe.label!r}: {m.state.last.detail}"
            if verdict == "ready" and m.when == "ready":
                m.done = True
        return None
