"""dfhook replay: saved deliveries re-sent byte for byte, signed, reported, never redirected."""

import base64
import functools
import http.server
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import cdn
from dfhook_test import DFHOOK, TempDirTestCase, main, read_fixture, run
from listener import SECRET, Listener, sign

SEED = read_fixture("seed-payload.json")
DATAFILE_R1 = read_fixture("datafile-1234-r1.json")
FLAG_UPDATED = b'{"project_id":1234,"timestamp":1,"event":"project.flag_updated","data":[]}'
ESCAPED = (b'{"project_id":1234,"timestamp":2,"event":"project.flag_updated",'
           b'"data":{"url":"https:\\/\\/cdn.optimizely.com\\/json\\/1234.json",'
           b'"name":"caf\xc3\xa9 \\u00e9 \xe2\x82\xac"}}')
PRETTY = b'{\n  "project_id": 1234,\n  "timestamp": 3,\n  "event": "project.flag_updated",\n' \
         b'  "data": [ ]\n}'


class Recorder:
    """An HTTP server on 127.0.0.1 that records each request's raw body and headers and
    answers with the next queued (status, headers, body), else 200."""

    def __init__(self):
        self.requests = []  # (path, [(name, value)], body bytes)
        self.answers = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with owner.lock:
                    owner.requests.append((self.path, list(self.headers.items()), body))
                    status, headers, answer = owner.answers.pop(0) if owner.answers \
                        else (200, {}, b'{"status":"ok"}')
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def url(self, path="/webhooks/optimizely"):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def queue(self, status, headers=None, body=b""):
        with self.lock:
            self.answers.append((status, headers or {}, body))
        return self


def header(headers, name):
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def envelope(identifier, body, headers):
    document = {"dfhook_envelope": 1, "id": identifier,
                "received_at": "2025-01-01T00:00:00.000000Z", "remote_addr": "127.0.0.1:9",
                "method": "POST", "path": "/webhooks/optimizely", "headers": headers}
    try:
        document["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        document["body_base64"] = base64.b64encode(body).decode()
    return json.dumps(document, ensure_ascii=True).encode()


def refused_port():
    """A loopback port nothing listens on: bound (so no one else takes it) but not listening."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s


@functools.lru_cache(maxsize=None)
def sanitized():
    """True when the binary is built with AddressSanitizer, whose shadow memory and quarantine
    make its resident size say nothing about dfhook's."""
    with open(DFHOOK, "rb") as f:
        return b"__asan_init" in f.read()


MIB = 1024 * 1024
# Peak resident size allowed to a replay that streams its input (it holds about 10 MiB).
RSS_LIMIT = 30 * MIB

# Runs a command as its child and writes "PID" and then "EXIT_CODE MAXRSS_KIB" to a file. The
# peak that Linux reports for a process includes that of the process it was forked from (and,
# across exec, of the program it was before), so dfhook is started from this small program
# rather than from the test with its larger heap. SIGTERM is passed on to the command.
MEASURE = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
with open(sys.argv[1], "w") as f:
    f.write(f"{pid}\\n")
    f.flush()
    _, status, usage = os.wait4(pid, 0)
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}\\n")
"""


def run_measured(args, stdout, stderr=subprocess.DEVNULL, write=None, until=None, timeout=120):
    """Runs dfhook; returns (exit code, peak resident bytes). `write(pipe)`, when given, writes
    its standard input on a thread. `until(pid)` is polled while it runs and, once true, it is
    terminated; it is killed after `timeout` seconds."""
    with tempfile.NamedTemporaryFile("r", prefix="dfhook-measure-") as report:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
        proc = subprocess.Popen([sys.executable, "-S", "-c", MEASURE, report.name, DFHOOK, *args],
                                stdin=subprocess.PIPE if write else subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, env=env)
        writer = None
        if write:
            def feed():
                try:
                    with proc.stdin:
                        write(proc.stdin)
                except BrokenPipeError:
                    pass
            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
        deadline = time.monotonic() + timeout
        pid = None
        try:
            while proc.poll() is None:
                if pid is None:
                    report.seek(0)
                    line = report.readline()
                    pid = int(line) if line.endswith("\n") else None
                if time.monotonic() > deadline:
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                    proc.kill()
                    proc.wait()
                    raise AssertionError(f"dfhook {' '.join(args)} ran {timeout} s")
                if until is not None and pid is not None and until(pid):
                    proc.terminate()
                    proc.wait()
                    break
                time.sleep(0.01)
        finally:
            if writer:
                writer.join(timeout=10)
        report.seek(0)
        lines = report.read().splitlines()
        code, rss_kib = (int(field) for field in lines[1].split())
    return code, rss_kib * 1024


class Replay(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.secrets = self.write("secrets", (SECRET + "\n").encode())

    def saved_dir(self, bodies, signed=True):
        """A directory of envelopes, one per body, in this order."""
        directory = os.path.join(self.dir, "saved")
        os.makedirs(directory, exist_ok=True)
        for n, body in enumerate(bodies):
            headers = [["Content-Type", "application/json"], ["User-Agent", "Optimizely/1"]]
            if signed:
                headers.append(["X-Hub-Signature", sign(body)])
            self.write(f"saved/2025010{n}T000000.000000Z-{n:016x}.json",
                       envelope(f"{n:016x}", body, headers))
        return directory

    def test_bodies_arrive_byte_for_byte_with_saved_headers_and_signature(self):
        binary = b'{"event":"x","bytes":"\xff\xfe"}'
        directory = self.saved_dir([SEED, ESCAPED, PRETTY, binary])
        with Recorder() as receiver:
            result = run("replay", "--to", receiver.url(), directory)
            self.assertEqual(result.code, 0, result)
            self.assertEqual([r[2] for r in receiver.requests], [SEED, ESCAPED, PRETTY, binary])
            for _, headers, body in receiver.requests:
                self.assertEqual(header(headers, "X-Hub-Signature"), sign(body))
                self.assertEqual(header(headers, "Content-Type"), "application/json")
                self.assertEqual(header(headers, "User-Agent"), "Optimizely/1")
                self.assertIsNone(header(headers, "Expect"))
        lines = result.out.splitlines()
        self.assertEqual(len(lines), 5, result)
        self.assertRegex(lines[0], r"^.*/saved/20250100T000000\.000000Z-0{16}\.json:1:1: "
                                   r"delivery 0{16}: 200 \d+(\.\d)?(us|ms|s)$")
        self.assertRegex(lines[4], r"^replayed 4 deliveries to http://127\.0\.0\.1:\d+/webhooks/"
                                   r"optimizely in .*: 4 ok, 0 failed")

    def test_a_secret_signs_afresh_and_headers_are_overridden(self):
        directory = self.saved_dir([SEED], signed=False)
        other = self.write("other-secret", b"another-secret\n")
        with Recorder() as receiver:
            result = run("replay", "--to", receiver.url(), "--secret-file", other,
                         "--header", "User-Agent: replayer", "--header", "X-Extra: 1", directory)
            self.assertEqual(result.code, 0, result)
            (_, headers, body), = receiver.requests
        self.assertEqual(body, SEED)
        self.assertEqual(header(headers, "X-Hub-Signature"), sign(SEED, "another-secret"))
        self.assertEqual(header(headers, "User-Agent"), "replayer")
        self.assertEqual(header(headers, "X-Extra"), "1")

    def test_bare_payloads_several_per_file_and_stdin_unsigned_with_a_warning(self):
        payloads = self.write("payloads.jsonl", SEED.strip() + b"\n" + PRETTY + b"\n")
        with Recorder() as receiver:
            result = run("--log-format", "text", "replay", "--to", receiver.url(), payloads, "-",
                         stdin=FLAG_UPDATED)
            self.assertEqual(result.code, 0, result)
            bodies = [r[2] for r in receiver.requests]
            headers = receiver.requests[0][1]
        self.assertEqual(bodies, [SEED.strip(), PRETTY, FLAG_UPDATED])
        self.assertIsNone(header(headers, "X-Hub-Signature"))
        self.assertEqual(header(headers, "Content-Type"), "application/json")
        self.assertTrue(header(headers, "User-Agent").startswith("dfhook-replay/"))
        self.assertEqual(result.err.count("sent unsigned"), 3, result)
        self.assertIn("standard input:1:1: document 1: 200", result.out)

    def test_redirects_are_reported_and_never_followed(self):
        for status in (301, 302, 307):
            with self.subTest(status=status), Recorder() as receiver:
                receiver.queue(status, {"Location": receiver.url("/elsewhere")})
                directory = self.saved_dir([SEED])
                result = run("replay", "--to", receiver.url(), directory)
                self.assertEqual(result.code, 1, result)
                self.assertEqual([r[0] for r in receiver.requests], ["/webhooks/optimizely"])
                where = receiver.url("/elsewhere")
                self.assertIn(f": delivery 0000000000000000: answered {status} with a redirect "
                              f"to '{where}', not followed\nhint: redirects are never "
                              f"followed: give the final URL with --to\n", result.err)
                self.assertIn(f"{status} ", result.out)
                self.assertIn("0 ok, 1 failed (1 redirects", result.out)

    def test_a_5xx_then_a_2xx_with_retries_succeeds(self):
        directory = self.saved_dir([SEED])
        with Recorder() as receiver:
            receiver.queue(503, {}, b"busy").queue(500, {}, b"oops")
            result = run("replay", "--to", receiver.url(), "--retries", "2", directory)
            self.assertEqual(result.code, 0, result)
            self.assertEqual([r[2] for r in receiver.requests], [SEED, SEED, SEED])
        self.assertIn(": 200 ", result.out)
        self.assertIn("(3 attempts)", result.out)

    def test_a_5xx_after_every_retry_fails(self):
        directory = self.saved_dir([SEED])
        with Recorder() as receiver:
            receiver.queue(502).queue(502)
            result = run("replay", "--to", receiver.url(), "--retries", "1", directory)
            self.assertEqual(result.code, 1, result)
            self.assertEqual(len(receiver.requests), 2)
        self.assertIn(": delivery 0000000000000000: answered 502\n", result.err)

    def test_a_dead_port_is_a_clear_error_and_stops(self):
        directory = self.saved_dir([SEED, FLAG_UPDATED])
        with refused_port() as s:
            url = f"http://127.0.0.1:{s.getsockname()[1]}/webhooks/optimizely"
            result = run("replay", "--to", url, "--retries", "0", directory)
        self.assertEqual(result.code, 1, result)
        self.assertRegex(result.err, r"dfhook: error: .*-0{16}\.json:1:1: delivery 0{16}: no "
                                     r"answer from '" + url + r"': .*[Cc]ouldn't connect to "
                                     r"server\nhint: check that a receiver listens at the --to "
                                     r"URL\n")
        self.assertIn(f"dfhook: error: stopped: '{url}' cannot be reached; later deliveries "
                      "were not sent\n", result.err)
        self.assertRegex(result.out, r"\nreplayed 1 delivery to .*: 0 ok, 1 failed ")

    def test_dry_run_sends_nothing(self):
        directory = self.saved_dir([SEED, ESCAPED])
        with Recorder() as receiver:
            result = run("replay", "--to", receiver.url(), "--dry-run", "--format", "json",
                         directory)
            self.assertEqual(result.code, 0, result)
            self.assertEqual(receiver.requests, [])
        lines = [json.loads(line) for line in result.out.splitlines()]
        self.assertEqual([line["type"] for line in lines], ["delivery", "delivery", "summary"])
        self.assertEqual(lines[0]["bytes"], len(SEED))
        self.assertEqual(lines[0]["signature"], "saved")
        self.assertIn(["X-Hub-Signature", sign(SEED)], lines[0]["headers"])
        self.assertEqual(lines[2]["deliveries"], 2)
        self.assertEqual(lines[2]["dry_run"], True)

    def test_json_format_has_one_object_per_delivery_and_a_summary(self):
        directory = self.saved_dir([SEED, FLAG_UPDATED])
        with Recorder() as receiver:
            receiver.queue(202).queue(404)
            result = run("replay", "--to", receiver.url(), "--format", "json", "--concurrency",
                         "1", directory)
        self.assertEqual(result.code, 1, result)
        lines = [json.loads(line) for line in result.out.splitlines()]
        self.assertEqual([(l.get("id"), l.get("status"), l.get("outcome")) for l in lines[:2]],
                         [("0" * 16, 202, "ok"), ("0" * 15 + "1", 404, "http-error")])
        self.assertEqual(lines[2]["type"], "summary")
        self.assertEqual((lines[2]["ok"], lines[2]["failed"]), (1, 1))

    def test_a_progress_bar_is_drawn_only_when_stderr_is_a_terminal(self):
        directory = self.saved_dir([SEED, FLAG_UPDATED])
        with Recorder() as receiver:
            primary, secondary = pty.openpty()
            try:
                completed = subprocess.run(
                    [DFHOOK, "replay", "--to", receiver.url(), directory],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
                    env={"PATH": os.environ.get("PATH", "")}, timeout=60, check=False)
                os.close(secondary)
                secondary = None
                drawn = b""
                while True:
                    try:
                        chunk = os.read(primary, 65536)
                    except OSError:  # EIO: the terminal's other side is closed
                        break
                    if not chunk:
                        break
                    drawn += chunk
            finally:
                if secondary is not None:
                    os.close(secondary)
                os.close(primary)
            self.assertEqual(completed.returncode, 0, drawn)
            self.assertIn(b"] 2/2 files, 2 sent, 0 failed", drawn)
            self.assertTrue(drawn.endswith(b"\r\x1b[K"), drawn)
            self.assertNotIn(b"files,", completed.stdout)
            plain = run("replay", "--to", receiver.url(), directory)
            self.assertEqual(plain.code, 0, plain)
            self.assertNotIn("files,", plain.err)

    def test_unreadable_input_and_usage_errors_exit_2(self):
        with Recorder() as receiver:
            missing = os.path.join(self.dir, "missing.json")
            result = run("replay", "--to", receiver.url(), missing)
            self.assertEqual(result.code, 2, result)
            self.assertEqual(result.err,
                             f"dfhook: error: cannot read '{missing}': No such file or "
                             "directory\n")
            broken = self.write("broken.json", SEED + b'\n{"a": }\n')
            result = run("replay", "--to", receiver.url(), broken)
            self.assertEqual(result.code, 2, result)
            self.assertIn(f"dfhook: error: {broken}:2:7: document 2: ", result.err)
            self.assertEqual(len(receiver.requests), 1)  # the good document still went
            result = run("replay", "--to", receiver.url(), "--header", "Bad Name: x", broken)
            self.assertEqual(result.code, 2, result)
            self.assertIn("dfhook: error: --header 'Bad Name: x': invalid header name", result.err)
            result = run("replay", "--to", "ftp://x/y", broken)
            self.assertEqual(result.code, 2, result)
            result = run("replay", broken)
            self.assertEqual(result.code, 2, result)
            self.assertEqual(len(receiver.requests), 1)

    def test_replay_streams_its_input_memory_does_not_grow_with_the_documents(self):
        count = 200_000
        payload = (b'{"project_id":1234,"timestamp":1,"event":"project.flag_updated",'
                   b'"data":[{"flag":"f","n":%d}]}\n')
        out = os.path.join(self.dir, "out.jsonl")

        def write(pipe):  # a pipe, written as dfhook reads it
            for start in range(0, count, 1000):
                pipe.write(b"".join(payload % n for n in range(start, start + 1000)))

        with open(out, "wb") as stdout:
            code, rss = run_measured(["replay", "--dry-run", "--format", "json", "--secret-file",
                                      self.secrets, "--to", "http://127.0.0.1:9/"], stdout,
                                     write=write)
        self.assertEqual(code, 0)
        if not sanitized():
            self.assertLess(rss, RSS_LIMIT, f"peak RSS {rss / MIB:.1f} MiB")
        with open(out, "rb") as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), count + 1)
        self.assertEqual(json.loads(lines[-2])["line"], count)
        summary = json.loads(lines[-1])
        self.assertEqual((summary["type"], summary["deliveries"]), ("summary", count))

    def test_endless_input_is_reported_as_it_is_read_memory_stays_flat(self):
        # /dev/zero never ends: its first document is a problem, reported at once, and reading
        # goes on (looking for a line that starts with '{') without holding what it skipped.
        err = os.path.join(self.dir, "err")

        def proc_fields(pid, name):
            with open(f"/proc/{pid}/{name}") as f:
                return dict(line.split(":", 1) for line in f.read().splitlines())

        def read_a_lot(pid):
            # A replay that grows is stopped before it takes the machine's memory (the check
            # of the peak below fails); sanitizers add hundreds of MiB of their own.
            resident = int(proc_fields(pid, "status")["VmRSS"].split()[0]) * 1024
            if resident > (4096 * MIB if sanitized() else RSS_LIMIT):
                return True
            with open(err, "rb") as f:
                if b"\n" not in f.read():
                    return False
            return int(proc_fields(pid, "io")["rchar"]) > 512 * MIB

        with open(err, "wb") as stderr:
            code, rss = run_measured(["replay", "--dry-run", "--to", "http://127.0.0.1:9/",
                                      "/dev/zero"], subprocess.DEVNULL, stderr,
                                     until=read_a_lot, timeout=60)
        with open(err, "rb") as f:
            reported = f.read().decode()
        if not sanitized():
            self.assertLess(rss, RSS_LIMIT, f"peak RSS {rss / MIB:.1f} MiB")
        self.assertEqual(code, -signal.SIGTERM, reported)  # still reading when stopped
        self.assertEqual(reported, "dfhook: error: /dev/zero:1:1: document 1: the document is "
                                   "empty\nhint: this document is not sent\n")


class ListenToListen(unittest.TestCase):
    """Deliveries saved by one listener, replayed into a second, arrive as they were sent and
    lead the second to the same datafile."""

    def test_saved_deliveries_replayed_into_a_second_listener_give_the_same_datafile(self):
        with tempfile.TemporaryDirectory(prefix="dfhook-replay-ll-") as tmp, \
                cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            secrets = os.path.join(tmp, "secrets")
            with open(secrets, "w") as f:
                f.write(SECRET + "\n")

            def listener(name):
                return Listener(["--secret-file", secrets, "--out-dir",
                                 os.path.join(tmp, name, "out"), "--save-dir",
                                 os.path.join(tmp, name, "saved"), "--poll-interval", "0",
                                 *server.args()])

            def updated(line):
                return line.get("msg") == "datafile updated"

            bodies = [SEED, ESCAPED, PRETTY, FLAG_UPDATED]
            with listener("first") as first:
                for body in bodies:
                    status, _ = first.post(body, sign(body))
                    self.assertEqual(status, 202 if body == SEED else 200)
                first.wait_for_log(updated)
            first_saved = os.path.join(tmp, "first", "saved")
            with listener("second") as second:
                # Without a secret: the saved signatures are what the second one checks.
                result = run("replay", "--to",
                             f"http://127.0.0.1:{second.port}/webhooks/optimizely", first_saved)
                self.assertEqual(result.code, 0, result)
                self.assertEqual(second.metric("dfhook_signature_failures_total"), 0)
                second.wait_for_log(updated)

            def stored(name):
                with open(os.path.join(tmp, name, "out", "1234.json"), "rb") as f:
                    return f.read()

            self.assertEqual(stored("second"), DATAFILE_R1)
            self.assertEqual(stored("second"), stored("first"))

            def saved(name):
                directory = os.path.join(tmp, name, "saved")
                out = []
                for entry in sorted(os.listdir(directory)):
                    with open(os.path.join(directory, entry), "rb") as f:
                        document = json.loads(f.read())
                    out.append((document["body"].encode(),
                                [h for h in document["headers"] if h[0] == "X-Hub-Signature"]))
                return out

            self.assertEqual(saved("second"), saved("first"))
            self.assertEqual([b for b, _ in saved("second")], bodies)


if __name__ == "__main__":
    main()
