"""Probes against real sockets, HTTP servers and files on this machine."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_iac.errors import ConfigError
from dynamo_iac.targets.probes import (Attempt, GraphReadyProbe, HttpProbe, LogProbe, ProbeState, TcpProbe,
                                       expected_instances, http_request, probe_from_dict)

# What a real Dynamo 1.6.1 frontend answered with one prefill and one decode mocker registered
# (captured from a local run; the shape GraphReadyProbe reads).
DYNAMO_HEALTH = {
    "status": "healthy",
    "endpoints": ["dyn://g.backend.generate", "dyn://g.prefill.generate", "dyn://g.prefill.worker_kv_query_source_1"],
    "instances": [
        {"component": "backend", "endpoint": "generate", "namespace": "g", "instance_id": 1,
         "transport": {"tcp": "127.0.0.1:37769/cb72/g/backend/generate"}},
        {"component": "prefill", "endpoint": "generate", "namespace": "g", "instance_id": 2,
         "transport": {"tcp": "127.0.0.1:39277/d640/g/prefill/generate"}},
        {"component": "prefill", "endpoint": "worker_kv_query_source_1", "namespace": "g", "instance_id": 2,
         "transport": {"tcp": "127.0.0.1:39277/d640/g/prefill/worker_kv_query_source_1"}},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real HTTP server on 127.0.0.1 whose answers a test scripts per path."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                try:
                    self._get()
                except (BrokenPipeError, ConnectionResetError):
                    pass               # the probe gave up on a slow answer: that is the point

            def _get(self):
                srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
                route = srv.routes.get(self.path, (404, b"not found"))
                if callable(route):
                    route = route(self, srv.hits[self.path])
                if route is None:
                    return
                status, body = route
                body = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False      # do not wait for handlers a test left sleeping
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


# ------------------------------------------------------------------------------------ TCP
def test_tcp_ready_on_listening_socket():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = TcpProbe(port=s.getsockname()[1], deadline=2).wait()
    assert r.ok and r.outcome == "ready" and r.attempts == 1


def test_tcp_deadline_is_enforced_on_closed_port():
    port = free_port()
    t0 = time.monotonic()
    r = TcpProbe(port=port, interval=0.05, deadline=0.4).wait()
    took = time.monotonic() - t0
    assert not r.ok and r.outcome == "deadline"
    assert r.attempts >= 3 and "refused" in r.detail.lower()
    assert 0.35 <= took < 0.9          # never much past the deadline (slack for a loaded machine)


def test_tcp_failure_threshold_stops_early():
    r = TcpProbe(port=free_port(), interval=0.01, failure_threshold=3, deadline=30).wait()
    assert r.outcome == "failed" and r.attempts == 3 and r.elapsed < 1


def test_tcp_becomes_ready_when_port_opens_later():
    port = free_port()
    lst = socket.socket()

    def open_later():
        time.sleep(0.3)
        lst.bind(("127.0.0.1", port))
        lst.listen()

    threading.Thread(target=open_later, daemon=True).start()
    try:
        r = TcpProbe(port=port, interval=0.05, deadline=5).wait()
    finally:
        lst.close()
    assert r.ok and r.attempts > 1 and r.elapsed >= 0.25


# ------------------------------------------------------------------------------------ HTTP
def test_http_status_and_body_match(server):
    server.routes["/health"] = (200, {"status": "healthy"})
    assert HttpProbe(url=server.url + "/health", body=r'"status":\s*"healthy"').wait().ok
    miss = HttpProbe(url=server.url + "/health", body="unhealthy", deadline=0.3, interval=0.05).wait()
    assert miss.outcome == "deadline" and "does not match" in miss.detail
    wrong = HttpProbe(url=server.url + "/nope", deadline=0.3, interval=0.05).wait()
    assert not wrong.ok and "status 404" in wrong.detail
    assert HttpProbe(url=server.url + "/nope", status=(404,)).wait().ok


def test_http_success_threshold_needs_consecutive_successes(server):
    # fails on every 3rd hit: 3 consecutive successes are impossible until hits 4, 5 and 7 ... never 3 in a row
    server.routes["/flaky"] = lambda h, n: (500, b"x") if n % 3 == 0 else (200, b"ok")
    r = HttpProbe(url=server.url + "/flaky", success_threshold=3, interval=0.01, deadline=0.5).wait()
    assert r.outcome == "deadline" and r.attempts >= 6
    server.routes["/late"] = lambda h, n: (503, b"starting") if n <= 2 else (200, b"ok")
    r = HttpProbe(url=server.url + "/late", success_threshold=2, interval=0.01, deadline=5).wait()
    assert r.ok and r.attempts == 4 and server.hits["/late"] == 4


def test_http_deadline_cuts_a_hanging_attempt(server):
    def hang(h, n):
        time.sleep(3)
        return (200, b"late")

    server.routes["/hang"] = hang
    t0 = time.monotonic()
    r = HttpProbe(url=server.url + "/hang", timeout=10, deadline=0.5).wait()
    assert not r.ok and r.outcome == "deadline"
    assert time.monotonic() - t0 < 1.0           # the attempt's timeout was cut to the time left


def test_http_total_timeout_covers_a_dribbling_body(server):
    def dribble(h, n):
        h.send_response(200)
        h.send_header("content-length", "100")
        h.end_headers()
        for _ in range(20):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)
        return None

    server.routes["/dribble"] = dribble
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        http_request(server.url + "/dribble", timeout=0.5)
    assert time.monotonic() - t0 < 1.2


def test_abort_callback_stops_waiting():
    calls = []

    def abort():
        calls.append(1)
        return "worker exited with code 1" if len(calls) >= 3 else None

    r = TcpProbe(port=free_port(), interval=0.01, deadline=30).wait(abort=abort)
    assert r.outcome == "aborted" and r.detail == "worker exited with code 1" and r.attempts == 2


# ------------------------------------------------------------------------------------ logs
def test_log_probe_sees_a_line_written_later(tmp_path):
    log = tmp_path / "w.log"

    def write():
        time.sleep(0.15)
        with open(log, "w") as f:
            f.write("starting\nloading ")
            f.flush()
            time.sleep(0.15)
            f.write("model\nserving on 127.0.0.1:9000\n")

    threading.Thread(target=write, daemon=True).start()
    probe = LogProbe(path=str(log), pattern=r"serving on \S+", interval=0.02, deadline=5)
    r = probe.wait()
    assert r.ok and r.detail == "serving on 127.0.0.1:9000" and r.attempts > 2


def test_log_probe_does_not_match_half_written_line(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("loading mod")
    probe = LogProbe(path=str(log), pattern="loading model$")
    assert not probe.attempt().ok          # the line is not finished: no match yet
    with open(log, "a") as f:
        f.write("el\n")
    assert probe.attempt().ok


def test_log_probe_rereads_a_truncated_file(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("a\n" * 100)
    probe = LogProbe(path=str(log), pattern="^ready$")
    assert not probe.attempt().ok
    log.write_text("ready\n")              # rotated/truncated: smaller than the offset
    assert probe.attempt().ok


def test_log_failure_probe_fires_on_fatal_line(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("INFO up\n")
    probe = LogProbe(path=str(log), pattern="panicked at", present=False, failure_threshold=1, interval=0.02,
                     deadline=5)
    st = probe.state()
    assert st.update(probe.attempt()) != "failed"
    with open(log, "a") as f:
        f.write("thread 'main' panicked at lib/runtime/src/x.rs:1:2\n")
    assert st.update(probe.attempt()) == "failed"
    assert "panicked at" in st.last.detail


# ------------------------------------------------------------------------------------ graph
def test_graph_ready_needs_model_and_every_worker(server):
    server.routes["/v1/models"] = (200, {"object": "list", "data": []})
    server.routes["/health"] = (200, {"status": "healthy", "endpoints": [], "instances": []})
    probe = GraphReadyProbe(base_url=server.url, model="tiny", instances={"backend": 1, "prefill": 1},
                            namespace="g", interval=0.02, deadline=0.3)
    r = probe.wait()
    assert r.outcome == "deadline"
    assert "model 'tiny' not listed" in r.detail and "backend/generate: 0 of 1" in r.detail
    # healthy and listed, but the prefill worker is not registered yet
    server.routes["/v1/models"] = (200, {"object": "list", "data": [{"id": "tiny", "object": "model"}]})
    half = dict(DYNAMO_HEALTH, instances=DYNAMO_HEALTH["instances"][:1])
    server.routes["/health"] = (200, half)
    a = probe.attempt()
    assert not a.ok and a.detail == "prefill/generate: 0 of 1 workers registered"
    server.routes["/health"] = (200, DYNAMO_HEALTH)
    a = probe.attempt()
    assert a.ok and "backend×1, prefill×1" in a.detail
    # instances of another namespace do not count
    other = GraphReadyProbe(base_url=server.url, model="tiny", instances={"backend": 1}, namespace="other")
    assert not other.attempt().ok


def test_graph_ready_frontend_down():
    a = GraphReadyProbe(base_url=f"http://127.0.0.1:{free_port()}", model="m", instances={"backend": 1}).attempt()
    assert not a.ok and "not answering" in a.detail


def test_expected_instances_maps_roles_to_components():
    assert expected_instances([("agg", 2)]) == {"backend": 2}
    assert expected_instances([("prefill", 2), ("decode", 3)]) == {"backend": 3, "prefill": 2}


# ------------------------------------------------------------------------------------ specs
def test_probe_specs_are_validated():
    p = probe_from_dict({"type": "http", "url": "http://127.0.0.1:8000/health", "status": [200, 204],
                         "deadline": 5})
    assert isinstance(p, HttpProbe) and p.status == (200, 204)
    with pytest.raises(ConfigError) as e:
        probe_from_dict({"type": "tcp", "port": 80, "intervall": 1})
    assert e.value.problems[0].path == "probe.intervall" and "interval" in e.value.problems[0].fix
    with pytest.raises(ConfigError) as e:
        probe_from_dict({"type": "smtp"})
    assert e.value.problems[0].path == "probe.type"
    with pytest.raises(ConfigError) as e:
        probe_from_dict({"type": "tcp", "port": 70000, "deadline": -1}, path="probes[2]")
    assert sorted(p.path for p in e.value.problems) == ["probes[2].deadline", "probes[2].port"]
    with pytest.raises(ConfigError):
        LogProbe(path="x", pattern="(")
    with pytest.raises(ConfigError):
        HttpProbe(url="ftp://x")
    with pytest.raises(ConfigError):
        TcpProbe(port=1, success_threshold=0)


@settings(max_examples=200, deadline=None)
@given(seq=st.lists(st.booleans(), max_size=30), succ=st.integers(1, 4),
       fail=st.one_of(st.none(), st.integers(1, 4)))
def test_probe_state_matches_reference(seq, succ, fail):
    st_ = ProbeState(succ, fail)
    verdict = None
    for i, ok in enumerate(seq):
        verdict = st_.update(Attempt(ok))
        run = 0
        for prev in reversed(seq[:i + 1]):      # length of the trailing run of equal results
            if prev != ok:
                break
            run += 1
        if ok:
            assert verdict == ("ready" if run >= succ else None)
        else:
            assert verdict == ("failed" if fail is not None and run >= fail else None)
        if verdict:
            break


# ------------------------------------------------------------------------------------ declared probes
from dynamo_iac.targets.probe_file import load_probes, parse_probes  # noqa: E402
from dynamo_iac.targets.probes import ProbeSet, default_failure_patterns, probe_from_spec  # noqa: E402


def test_probe_file_errors_name_the_field_path_and_the_fix(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse_probes({"probes": {"Worker": {"redy": [], "fail": [{"type": "log", "patern": "x"}],
                                            "ready": [{"type": "http", "body": "("}, {"type": "grpc"}]}},
                      "extra": 1}, "p.yaml")
    got = {p.path: (p.message, p.fix) for p in e.value.problems}
    assert got["p.yaml: probes.Worker.redy"] == ("unknown section", "did you mean 'ready'?")
    assert got["p.yaml: probes.Worker.fail[0].patern"][1] == "did you mean 'pattern'?"
    assert "invalid regular expression" in got["p.yaml: probes.Worker.ready[0].body"][0]
    assert got["p.yaml: probes.Worker.ready[1].type"][0] == "unknown probe type 'grpc'"
    assert got["p.yaml: extra"][0] == "unknown field"
    bad = tmp_path / "bad.yaml"
    bad.write_text("probes: [1, 2]\n")
    with pytest.raises(ConfigError, match="must map component names"):
        load_probes(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_probes(tmp_path / "missing.yaml")
    pf = parse_probes({"probes": {"Wroker": {"fail": [{"type": "log", "pattern": "x"}]}}})
    with pytest.raises(ConfigError) as e:
        pf.check(["Frontend", "Worker"])
    assert e.value.problems[0].path == "probes: probes.Wroker" and e.value.problems[0].fix == "did you mean 'Worker'?"


def test_declared_probes_bind_to_each_process():
    pf = parse_probes({"probes": {"Frontend": {"ready": [{"type": "http", "path": "/v1/models", "body": "tiny"}]},
                                  "Worker": {"fail": [{"type": "tcp", "port": 9090}]}}})
    fe = pf.entries("Frontend", "Frontend", "frontend", host="10.0.0.1", port=8000, log="/l/Frontend.log", deadline=9)
    w = pf.entries("Worker-1", "Worker", "worker", host="n1", port=None, log="/l/Worker-1.log", deadline=9)
    probes = ProbeSet(fe + w).members
    assert [(m.owner, m.when, type(m.probe).__name__) for m in probes] == [
        ("Frontend", "fail", "LogProbe"), ("Frontend", "ready", "HttpProbe"),
        ("Worker-1", "fail", "LogProbe"), ("Worker-1", "fail", "TcpProbe")]
    assert probes[1].probe.url == "http://10.0.0.1:8000/v1/models" and probes[1].probe.deadline == 9
    assert (probes[3].probe.host, probes[3].probe.port, probes[3].probe.failure_threshold) == ("n1", 9090, 3)
    # the worker's default failure patterns include Python's traceback header; a frontend's do not
    assert probes[2].probe.pattern.endswith(r"(?:^Traceback \(most recent call last\):)")
    assert "Traceback" not in probes[0].probe.pattern
    assert default_failure_patterns("broker") == (r"panicked at ", r"Fatal Python error")
    assert parse_probes({"default_failure_patterns": False}).entries("W", "W", "worker", host="h", port=None,
                                                                      log="l", deadline=1) == []
    # an http probe of a process without a port of its own must say which port
    with pytest.raises(ConfigError) as e:
        probe_from_spec({"type": "http", "path": "/health"}, when="ready", host="h", port=None, log="l",
                        deadline=5, path="probes.Worker.ready[0]")
    assert e.value.problems[0].path == "probes.Worker.ready[0].port"


def test_probe_set_readiness_failure_and_liveness(tmp_path, server):
    log = tmp_path / "w.log"
    log.write_text("\x1b[32m INFO\x1b[0m starting\n")
    port = int(server.url.rsplit(":", 1)[1])
    entries = [
        {"owner": "W-0", "when": "ready", "spec": {"type": "log", "pattern": "INFO engine ready", "interval": 0.01},
         "log": str(log), "deadline": 5},
        {"owner": "W-0", "when": "fail", "spec": {"type": "log", "pattern": "OOM", "interval": 0.01}, "log": str(log)},
        {"owner": "FE", "when": "fail", "spec": {"type": "http", "path": "/live", "interval": 0.01,
                                                 "failure_threshold": 2}, "port": port},
    ]
    ps = ProbeSet(entries)
    assert ps.poll() is None and ps.pending == ["W-0: log w.log has /INFO engine ready/"]
    assert server.hits == {}               # a liveness probe waits for the graph to be ready
    with log.open("a") as f:
        f.write("\x1b[32m INFO\x1b[0m engine ready\n")     # colour codes are not part of the line
    time.sleep(0.02)
    assert ps.poll() is None and ps.pending == [] and ps.passed == ["W-0: log w.log has /INFO engine ready/"]
    server.routes["/live"] = (200, b"ok")
    time.sleep(0.02)
    assert ps.poll(ready=True) is None and server.hits["/live"] == 1
    with log.open("a") as f:
        f.write("CUDA OOM while allocating\n")
    time.sleep(0.02)
    owner, reason = ps.poll(ready=True)
    assert owner == "W-0" and reason == "tripped its failure probe 'log w.log lacks /OOM/': w.log: CUDA OOM while allocating"
    server.routes["/live"] = (503, b"down")
    ps2 = ProbeSet(entries[2:])
    for _ in range(2):
        time.sleep(0.02)
        hit = ps2.poll(ready=True)
    assert hit[0] == "FE" and "status 503" in hit[1]


def test_probe_set_readiness_deadline_counts_from_creation(tmp_path):
    now = [100.0]
    ps = ProbeSet([{"owner": "W-0", "when": "ready", "log": str(tmp_path / "none.log"),
                    "spec": {"type": "log", "pattern": "ready", "deadline": 3, "interval": 1}}], clock=lambda: now[0])
    assert ps.poll() is None
    now[0] = 103.0
    owner, reason = ps.poll()
    assert owner == "W-0" and reason.startswith("did not pass its readiness probe 'log none.log has /ready/' within "
                                                "its 3 s deadline (")
