"""listen's HTTP face: routes, limits, content checks, signatures, health, metrics, signals.

Each test starts `dfhook listen --port 0` and reads the real port from its
`listening on ADDR:PORT` log line (JSON lines on stderr); requests go over raw sockets where
the wire matters (chunks, Expect, conflicting headers, slowness) and http.client elsewhere.
Every process is stopped by its PID; every wait is bounded.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from dfhook_test import DFHOOK, main, read_fixture

SECRET = "test-webhook-secret"
PATH = "/webhooks/optimizely"
SEED = read_fixture("seed-payload.json")
SEED_SIGNATURE = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"
INVALID_SIGNATURE = {"status": "error", "error": "invalid signature"}


def sign(body, secret=SECRET):
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class Listen:
    """A `dfhook listen` process: started with `with`, stopped by PID."""

    def __init__(self, *args, env=None):
        self.args = [DFHOOK, "listen", "--port", "0", "--log-format", "json", *args]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
        self.env.update(env or {})
        self.lines = []
        self.changed = threading.Condition()
        self.process = None
        self.host = None
        self.port = None

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=self.env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        line = self.wait_for(lambda l: l.get("msg", "").startswith("listening on "))
        match = re.fullmatch(r"listening on (\[[^\]]+\]|[^:]+):(\d+)", line["msg"])
        assert match, line
        self.host = match.group(1).strip("[]")
        self.port = int(match.group(2))
        return self

    def __exit__(self, *exc):
        self.stop()

    def _read(self):
        for raw in self.process.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                entry = {"msg": text, "unparsed": True}
            with self.changed:
                self.lines.append(entry)
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                if not self.reader.is_alive():
                    raise AssertionError(f"listen exited first:\n{self.log()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such log line in {timeout}s:\n{self.log()}")
                self.changed.wait(left)

    def log(self):
        with self.changed:
            return "\n".join(json.dumps(line) for line in self.lines)

    def messages(self):
        with self.changed:
            return [line.get("msg") for line in self.lines]

    def stop(self, sig=signal.SIGTERM):
        if self.process is None:
            return self.code
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        self.stdout = self.process.stdout.read()
        self.process.stdout.close()
        self.process.stderr.close()
        self.code = self.process.returncode
        self.process = None
        return self.code

    def family(self):
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes) over a new connection."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response, response.read()
        finally:
            conn.close()

    def post(self, body, signature=None, headers=None):
        """(status, parsed JSON answer) of a webhook POST."""
        all_headers = {"Content-Type": "application/json"}
        if signature is not None:
            all_headers["X-Hub-Signature"] = signature
        all_headers.update(headers or {})
        status, _, answer = self.request("POST", PATH, body, all_headers)
        return status, json.loads(answer)

    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=10)
        return RawClient(sock)


class RawClient:
    """A socket speaking HTTP/1.1 by hand, for what http.client cannot send."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.pending += chunk

    def response(self):
        """(status, headers dict with lowercase names, body) of the next response."""
        while b"\r\n\r\n" not in self.pending:
            self._fill()
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.pending) < length:
            self._fill()
        body, self.pending = self.pending[:length], self.pending[length:]
        return status, headers, body

    def closed_by_peer(self):
        """True when the server ends the connection (EOF or reset) within the timeout."""
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def post_head(length=None, extra=b""):
    head = b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra
    if length is not None:
        head += b"Content-Length: " + str(length).encode() + b"\r\n"
    return head + b"\r\n"


class ListenCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dfhook-listen-http-")
        self.dir = self._tmp.name
        self.out = os.path.join(self.dir, "datafiles")
        self.secrets = os.path.join(self.dir, "secrets")
        with open(self.secrets, "w") as f:
            f.write(SECRET + "\n")

    def tearDown(self):
        self._tmp.cleanup()

    def listen(self, *extra, env=None):
        return Listen("--secret-file", self.secrets, "--out-dir", self.out,
                      "--poll-interval", "0", *extra, env=env)


class Webhook(ListenCase):
    def test_documented_payload_with_its_signature_is_accepted(self):
        with self.listen() as server:
            status, answer = server.post(SEED, SEED_SIGNATURE)
            self.assertEqual((status, answer), (202, {"status": "accepted", "revision": 1}))
        self.assertEqual(server.code, 0)
        self.assertEqual(server.stdout, b"")

    def test_header_name_in_any_case(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(len(SEED), b"content-TYPE: application/json\r\n"
                                      b"x-HUB-signature: " + SEED_SIGNATURE.encode() + b"\r\n")
                            + SEED)
                status, headers, body = client.response()
        self.assertEqual(status, 202, body)
        self.assertEqual(headers["content-type"], "application/json")

    def test_chunked_body_is_signed_over_its_dechunked_bytes(self):
        chunks = [SEED[:50], SEED[50:51], SEED[51:]]
        wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(None, b"Transfer-Encoding: chunked\r\n"
                                      b"X-Hub-Signature: " + SEED_SIGNATURE.encode() + b"\r\n")
                            + wire)
                status, _, body = client.response()
        self.assertEqual(status, 202, body)
        self.assertEqual(json.loads(body), {"status": "accepted", "revision": 1})

    def test_a_transfer_coding_besides_chunked_is_415_not_ignored(self):
        wire = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SEED), SEED)
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(None, b"Transfer-Encoding: gzip, chunked\r\n"
                                      b"X-Hub-Signature: " + SEED_SIGNATURE.encode() + b"\r\n")
                            + wire)
                status, _, body = client.response()
        self.assertEqual(status, 415, body)
        self.assertEqual(json.loads(body)["error"],
                         "send the body without transfer codings other than chunked")

    def test_json_content_type_with_charset_is_accepted(self):
        with self.listen() as server:
            status, answer = server.post(
                SEED, SEED_SIGNATURE, {"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(status, 202, answer)

    def test_form_encoded_body_is_415(self):
        with self.listen() as server:
            status, answer = server.post(
                b"a=1", SEED_SIGNATURE, {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, answer),
                         (415, {"status": "error",
                                "error": "send Content-Type: application/json"}))

    def test_gzip_body_is_415(self):
        with self.listen() as server:
            status, answer = server.post(b"\x1f\x8b\x08\x00", SEED_SIGNATURE,
                                         {"Content-Encoding": "gzip"})
        self.assertEqual(status, 415)
        self.assertEqual(answer["status"], "error")

    def test_wrong_and_missing_signatures_are_401_with_the_same_words(self):
        with self.listen() as server:
            for signature in (None, "sha1=zz", sign(SEED, "other-secret")):
                with self.subTest(signature=signature):
                    self.assertEqual(server.post(SEED, signature), (401, INVALID_SIGNATURE))
            self.assertNotIn(sign(SEED, "other-secret"), server.log())

    def test_two_conflicting_signature_headers_are_401(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(len(SEED), b"X-Hub-Signature: " + SEED_SIGNATURE.encode()
                                      + b"\r\nX-Hub-Signature: "
                                      + sign(SEED, "other").encode() + b"\r\n") + SEED)
                status, _, body = client.response()
        self.assertEqual((status, json.loads(body)), (401, INVALID_SIGNATURE))

    def test_unknown_event_with_array_data_is_acknowledged_as_ignored(self):
        body = b'{"project_id":1234,"timestamp":1,"event":"project.flag_updated","data":[1,2]}'
        with self.listen() as server:
            status, answer = server.post(body, sign(body))
        self.assertEqual(status, 200)
        self.assertEqual(answer["status"], "ignored")
        self.assertIn("project.flag_updated", answer["reason"])

    def test_invalid_payload_is_400_with_a_pointer(self):
        body = SEED.replace(b'"revision":1', b'"revision":"1"')
        with self.listen() as server:
            status, answer = server.post(body, sign(body))
        self.assertEqual(status, 400)
        self.assertEqual(answer["pointer"], "/data/revision")

    def test_disallowed_cdn_host_is_400_pointing_at_cdn_url(self):
        body = SEED.replace(b"https://cdn.optimizely.com", b"https://evil.example")
        with self.listen() as server:
            status, answer = server.post(body, sign(body))
        self.assertEqual((status, answer["pointer"]), (400, "/data/cdn_url"))


class Routes(ListenCase):
    def test_wrong_path_is_404_and_wrong_method_is_405_with_allow(self):
        with self.listen() as server:
            status, _, body = server.request("POST", "/other", b"{}")
            self.assertEqual((status, json.loads(body)),
                             (404, {"status": "error", "error": "not found"}))
            status, response, body = server.request("GET", PATH)
            self.assertEqual(status, 405)
            self.assertEqual(response.getheader("Allow"), "POST")
            self.assertEqual(json.loads(body)["status"], "error")
            status, response, _ = server.request("DELETE", "/healthz")
            self.assertEqual((status, response.getheader("Allow")), (405, "GET, HEAD"))

    def test_query_string_is_ignored(self):
        with self.listen() as server:
            status, _, body = server.request("POST", PATH + "?from=optimizely", SEED,
                                             {"X-Hub-Signature": SEED_SIGNATURE})
        self.assertEqual(status, 202, body)

    def test_healthz_answers_get_and_head(self):
        with self.listen() as server:
            status, response, body = server.request("GET", "/healthz")
            self.assertEqual(status, 200)
            self.assertEqual(response.getheader("Content-Type"), "application/json")
            self.assertEqual(json.loads(body), {"status": "ok", "datafiles": []})
            status, response, body = server.request("HEAD", "/healthz")
            self.assertEqual((status, body), (200, b""))
            self.assertEqual(response.getheader("Content-Length"), str(len(b'{"status":"ok","datafiles":[]}')))

    def test_metrics_counts_requests_by_route_and_status(self):
        with self.listen() as server:
            server.post(SEED, "sha1=00")
            server.request("GET", "/nowhere")
            status, response, body = server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(response.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertIn('dfhook_http_requests_total{route="webhook",status="401"} 1\n', text)
        self.assertIn('dfhook_http_requests_total{route="other",status="404"} 1\n', text)
        self.assertIn("dfhook_signature_failures_total 1\n", text)


class Limits(ListenCase):
    def test_declared_length_over_the_limit_is_413_at_once(self):
        with self.listen("--max-body", "1KiB") as server:
            with server.connect() as client:
                # Only the head: the answer must not wait for a body.
                client.send(post_head(1025, b"X-Hub-Signature: " + SEED_SIGNATURE.encode()
                                      + b"\r\n"))
                status, headers, body = client.response()
                self.assertEqual(status, 413)
                self.assertEqual(json.loads(body)["status"], "error")
                self.assertEqual(headers.get("connection"), "close")
                self.assertTrue(client.closed_by_peer())

    def test_chunked_body_over_the_limit_is_413_after_limit_plus_one_bytes(self):
        with self.listen("--max-body", "1KiB") as server:
            with server.connect() as client:
                # 1024 bytes, then a chunk of 1: limit + 1 bytes, and no last chunk. The 413
                # comes although the body never ends.
                client.send(post_head(None, b"Transfer-Encoding: chunked\r\n")
                            + b"400\r\n" + b"a" * 1024 + b"\r\n1\r\nb\r\n")
                status, _, body = client.response()
                self.assertEqual(status, 413)
                self.assertEqual(json.loads(body),
                                 {"status": "error",
                                  "error": "request body larger than 1024 bytes"})
                self.assertTrue(client.closed_by_peer())

    def test_expect_100_continue_gets_100_then_the_answer(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(len(SEED), b"Expect: 100-continue\r\n"
                                      b"X-Hub-Signature: " + SEED_SIGNATURE.encode() + b"\r\n"))
                self.assertEqual(client.response()[0], 100)
                client.send(SEED)
                status, _, body = client.response()
        self.assertEqual(status, 202, body)

    def test_expect_100_continue_on_a_refused_request_gets_the_refusal_only(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(2, b"Expect: 100-continue\r\n"
                                      b"Content-Type: text/plain\r\n"))
                status, _, _ = client.response()
        self.assertEqual(status, 415)

    def test_slow_client_gets_408_and_is_closed(self):
        with self.listen("--read-timeout", "300ms") as server:
            with server.connect() as client:
                client.send(post_head(len(SEED)) + SEED[:10])
                status, _, body = client.response()
                self.assertEqual(status, 408)
                self.assertEqual(json.loads(body)["status"], "error")
                self.assertTrue(client.closed_by_peer())

    def test_headers_over_16KiB_are_431(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(2, b"X-Filler: " + b"x" * (17 * 1024) + b"\r\n") + b"{}")
                self.assertEqual(client.response()[0], 431)

    def test_connections_over_the_limit_get_503(self):
        with self.listen("--max-connections", "1") as server:
            with server.connect() as first:
                first.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                self.assertEqual(first.response()[0], 200)
                with server.connect() as second:
                    status, _, body = second.response()
                    self.assertEqual(status, 503)
                    self.assertEqual(json.loads(body),
                                     {"status": "error", "error": "too many connections"})

    def test_rejections_are_summarised_not_logged_one_by_one(self):
        with self.listen() as server:
            for _ in range(20):
                server.post(SEED, "sha1=00")
            line = server.wait_for(lambda l: l.get("msg") == "rejected requests")
            self.assertEqual(line["count"], "20")
            self.assertEqual(line["statuses"], "401:20")
            self.assertEqual(server.messages().count("rejected requests"), 1)
            self.assertEqual(server.messages().count("delivery"), 0)


class Lifecycle(ListenCase):
    def test_sigterm_exits_0_after_answering_the_request_in_flight(self):
        with self.listen() as server:
            with server.connect() as client:
                client.send(post_head(len(SEED), b"Expect: 100-continue\r\n"
                                      b"X-Hub-Signature: " + SEED_SIGNATURE.encode() + b"\r\n"))
                self.assertEqual(client.response()[0], 100)
                server.process.send_signal(signal.SIGTERM)
                server.wait_for(lambda l: l.get("msg") == "stopping")
                client.send(SEED)
                status, headers, _ = client.response()
                self.assertEqual(status, 202)
                self.assertEqual(headers.get("connection"), "close")
            self.assertEqual(server.stop(), 0)
        self.assertIn("stopped", server.messages())

    def test_sighup_rereads_the_secret_file(self):
        with self.listen() as server:
            with open(self.secrets, "w") as f:
                f.write("new-secret\n")
            server.process.send_signal(signal.SIGHUP)
            server.wait_for(lambda l: l.get("msg") == "secrets reloaded")
            self.assertEqual(server.post(SEED, SEED_SIGNATURE), (401, INVALID_SIGNATURE))
            self.assertEqual(server.post(SEED, sign(SEED, "new-secret"))[0], 202)

    def test_ipv6_loopback(self):
        if not ipv6_loopback_available():
            self.skipTest("this machine has no IPv6 loopback (::1)")
        with self.listen("--host", "::1") as server:
            self.assertEqual(server.host, "::1")
            line = server.wait_for(lambda l: l.get("msg", "").startswith("listening on "))
            self.assertEqual(line["msg"], f"listening on [::1]:{server.port}")
            status, _, body = server.request("GET", "/healthz")
            self.assertEqual(status, 200, body)


class StartupErrors(ListenCase):
    def run_listen(self, *args, env=None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
        full_env.update(env or {})
        return subprocess.run([DFHOOK, "listen", "--port", "0", *args], capture_output=True,
                              env=full_env, timeout=60, check=False)

    def test_without_a_secret_it_refuses_to_start(self):
        r = self.run_listen("--out-dir", self.out)
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(r.stderr.decode(),
                         "dfhook: error: no secret to check webhook signatures with\n"
                         "hint: give one with --secret-file FILE, DFHOOK_SECRET or --secret "
                         "VALUE (or --insecure-skip-signature to accept unsigned webhooks)\n")

    def test_out_dir_not_writable_exits_1_naming_it(self):
        if os.geteuid() == 0:
            # Permissions do not stop root: a file where the directory should be does.
            out = os.path.join(self.dir, "file")
            with open(out, "w") as f:
                f.write("not a directory")
        else:
            out = os.path.join(self.dir, "readonly")
            os.mkdir(out, 0o555)
        r = self.run_listen("--secret-file", self.secrets, "--out-dir", out)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"'{out}", r.stderr.decode())
        self.assertTrue(r.stderr.decode().startswith("dfhook: error: "), r)

    def test_a_taken_port_exits_1_naming_the_address(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            r = subprocess.run([DFHOOK, "listen", "--secret-file", self.secrets, "--out-dir",
                                self.out, "--port", str(port)],
                               capture_output=True, timeout=60, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"dfhook: error: cannot listen on '127.0.0.1:{port}': address already in use",
                      r.stderr.decode())

    def test_a_host_that_is_not_an_address_is_a_usage_error(self):
        r = self.run_listen("--secret-file", self.secrets, "--out-dir", self.out,
                            "--host", "localhost")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("'localhost' is not an IPv4 or IPv6 address", r.stderr.decode())


if __name__ == "__main__":
    main()
