"""A `dfhook listen` process for the CLI tests.

    with Listener(["--secret-file", path, "--out-dir", out]) as listener:
        status, body = listener.post(payload, signature=sign(payload))
        listener.wait_for_log(lambda line: line.get("msg") == "datafile updated")

It starts `listen --port 0 --log-format json`, reads the real port from the
`listening on ADDR:PORT` line (no sleeping), keeps collecting the JSON log lines of stderr,
and stops the process by its PID (SIGTERM, then SIGKILL if it does not exit).
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

from dfhook_test import DFHOOK

SECRET = "test-webhook-secret"


def sign(body, secret=SECRET):
    """The X-Hub-Signature of body."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class Listener:
    def __init__(self, args, env=None, ready_timeout=30):
        self.args = ["listen", "--port", "0", "--log-format", "json", *args]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
        if env:
            self.env.update(env)
        self.ready_timeout = ready_timeout
        self.process = None
        self.host = None
        self.port = None
        self.lines = []  # every stderr line, parsed JSON when it is JSON, else the text
        self._changed = threading.Condition()
        self._reader = None
        self.exit_code = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.process = subprocess.Popen([DFHOOK, *self.args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env=self.env)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        line = self.wait_for_log(lambda l: str(l.get("msg", "")).startswith("listening on "),
                                 timeout=self.ready_timeout)
        match = re.match(r"listening on \[?([^\]]*)\]?:(\d+)$", line["msg"])
        if not match:
            raise AssertionError(f"unexpected ready line: {line}")
        self.host, self.port = match.group(1), int(match.group(2))

    def _read_stderr(self):
        for raw in self.process.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                entry = json.loads(text)
                if not isinstance(entry, dict):
                    entry = {"msg": text}
            except json.JSONDecodeError:
                entry = {"msg": text, "unparsed": True}
            with self._changed:
                self.lines.append(entry)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_log(self, predicate, timeout=30, start=0):
        """The first log line (from index `start`) for which predicate is true; waits for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    if predicate(line):
                        return line
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"listen exited ({self.process.returncode}) "
                                         f"before the log line came:\n{self.log_text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such log line within {timeout}s:\n"
                                         f"{self.log_text()}")
                self._changed.wait(left)

    def count_log(self, predicate):
        with self._changed:
            return sum(1 for line in self.lines if predicate(line))

    def log_text(self):
        with self._changed:
            return "\n".join(json.dumps(line) for line in self.lines)

    def connection(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Sends one request on a new connection; returns (status, headers, body bytes)."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def post(self, body, signature=None, path="/webhooks/optimizely", headers=None):
        """POSTs a webhook body; returns (status, parsed JSON answer)."""
        all_headers = {"Content-Type": "application/json"}
        if signature is not None:
            all_headers["X-Hub-Signature"] = signature
        all_headers.update(headers or {})
        status, _, answer = self.request("POST", path, body, all_headers)
        return status, json.loads(answer) if answer else None

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200, status
        return body.decode()

    def metric(self, name, labels=""):
        """The value of one metric sample (0 when absent)."""
        pattern = re.compile(r"^" + re.escape(name + labels) + r" ([0-9.e+-]+)$", re.M)
        match = pattern.search(self.metrics())
        return float(match.group(1)) if match else 0.0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the process and waits; returns its exit code."""
        if self.process is None:
            return self.exit_code
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        self.process.stderr.close()
        self.exit_code = self.process.returncode
        self.process = None
        return self.exit_code
