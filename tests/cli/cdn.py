"""Local HTTPS servers for the CLI tests (python3 stdlib only).

- Certificates: a throwaway CA and a leaf for the Optimizely host names, made with
  `openssl req -x509`, so dfhook runs with `--cacert CA --connect-to HOST:443:127.0.0.1:PORT`
  and the documented URLs are used byte for byte.
- NginxCdn: a real nginx (nginx-light) on 127.0.0.1 serving a temp directory, with nginx's own
  ETag, Last-Modified and 304 handling; requests are recorded in a JSON-lines access log.
- FaultServer: an http.server + ssl server in a thread answering each request with the next
  queued response: any status/headers/body, a truncated body, a stall, a slow body, a redirect;
  it records every request's headers as received.

Both listen on 127.0.0.1 only and are stopped by their PID / their thread when the `with`
block ends.
"""

import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "nginx"
HOSTS = ("cdn.optimizely.com", "optimizely.s3.amazonaws.com", "config.optimizely.com")

# The tests talk to loopback through --connect-to; a proxy from the environment would receive
# those requests instead.
for _name in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_name, None)


def _run(args, **kwargs):
    completed = subprocess.run(args, capture_output=True, check=False, timeout=60, **kwargs)
    if completed.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({completed.returncode}):\n"
                           + completed.stderr.decode("utf-8", "replace"))
    return completed


class Certificates:
    """A CA (ca.pem) and a leaf certificate for HOSTS, 127.0.0.1 and localhost."""

    def __init__(self, directory):
        self.directory = directory
        self.ca = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "leaf.pem")
        self.key = os.path.join(directory, "leaf.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(["openssl", "req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca,
              "-days", "2", "-subj", "/CN=dfhook test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        names = ",".join([f"DNS:{h}" for h in HOSTS] + ["DNS:localhost", "IP:127.0.0.1"])
        _run(["openssl", "req", "-x509", *ec, "-keyout", self.key, "-out", self.cert,
              "-CA", self.ca, "-CAkey", self.ca_key, "-days", "2",
              "-subj", f"/CN={HOSTS[0]}",
              "-addext", f"subjectAltName={names}",
              "-addext", "basicConstraints=critical,CA:FALSE",
              "-addext", "extendedKeyUsage=serverAuth"])


_shared_certificates = None
_shared_directory = None


def certificates():
    """The certificates of this test process, made once."""
    global _shared_certificates, _shared_directory
    if _shared_certificates is None:
        _shared_directory = tempfile.TemporaryDirectory(prefix="dfhook-certs-")
        _shared_certificates = Certificates(_shared_directory.name)
    return _shared_certificates


def network_args(port, certs=None, hosts=HOSTS):
    """dfhook options that send HOSTS:443 to 127.0.0.1:port and trust the test CA."""
    certs = certs or certificates()
    args = ["--cacert", certs.ca]
    for host in hosts:
        args += ["--connect-to", f"{host}:443:127.0.0.1:{port}"]
    return args


def free_port():
    """A TCP port that was free a moment ago (bind to 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# One process (no master/worker split): the PID we start is the whole server, and no worker
# switches to 'nobody' when the tests run as root.
_NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  types {{ application/json json; }}
  default_type application/octet-stream;
  log_format dfhook escape=json '{{"method":"$request_method","uri":"$request_uri",'
    '"host":"$host","status":$status,"bytes":$body_bytes_sent,'
    '"if_none_match":"$http_if_none_match","if_modified_since":"$http_if_modified_since",'
    '"authorization":"$http_authorization","user_agent":"$http_user_agent"}}';
  access_log {dir}/access.log dfhook;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30s;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {hosts};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {root};
    location / {{ }}
    location /slow/ {{
      alias {root}/;
      limit_rate {slow_rate};
    }}
  }}
}}
"""


class NginxCdn:
    """nginx on 127.0.0.1:port serving `root` over HTTPS for HOSTS.

    with NginxCdn() as cdn:
        cdn.put("json/1234.json", data)
        run("fetch-datafile", "--project-id", "1234", *cdn.args(), ...)
    A path under /slow/ serves the same file at `slow_rate` bytes per second.
    """

    def __init__(self, certs=None, slow_rate="1m"):
        self.certs = certs or certificates()
        self.slow_rate = slow_rate
        self._tmp = None
        self.dir = None
        self.root = None
        self.port = None
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dfhook-cdn-")
        self.dir = self._tmp.name
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root)
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            started, last_error = self._try_start()
            if started:
                return
            if "Address already in use" not in last_error:
                break
        self._tmp.cleanup()
        raise RuntimeError(f"nginx did not start:\n{last_error}")

    def _try_start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        pid_file = os.path.join(self.dir, "nginx.pid")
        error_log = os.path.join(self.dir, "error.log")
        with open(conf, "w") as f:
            f.write(_NGINX_CONF.format(dir=self.dir, port=self.port,
                                       hosts=" ".join(HOSTS), cert=self.certs.cert,
                                       key=self.certs.key, root=self.root,
                                       slow_rate=self.slow_rate))
        for stale in (pid_file, error_log):
            if os.path.exists(stale):
                os.unlink(stale)
        check = subprocess.run([NGINX, "-t", "-q", "-p", self.dir, "-e", error_log, "-c", conf],
                               capture_output=True, check=False, timeout=30)
        if check.returncode != 0:
            return False, check.stderr.decode("utf-8", "replace")
        self.process = subprocess.Popen(
            [NGINX, "-p", self.dir, "-e", error_log, "-c", conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # nginx writes its pid file once its sockets listen; until then, or until it exits.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode("utf-8", "replace")
                if os.path.exists(error_log):
                    with open(error_log, encoding="utf-8", errors="replace") as f:
                        err += f.read()
                self.process = None
                return False, err
            if os.path.exists(pid_file) and os.path.getsize(pid_file) > 0:
                return True, ""
            time.sleep(0.01)
        self._kill()
        return False, "nginx did not write its pid file within 10 s"

    def _kill(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process.stderr.close()
            self.process = None

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)  # nginx's fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
            if self.process is not None:
                self.process.stderr.close()
                self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def args(self, hosts=HOSTS):
        """--cacert and --connect-to options for dfhook."""
        return network_args(self.port, self.certs, hosts)

    def url(self, path, host=HOSTS[0]):
        return f"https://{host}/{path.lstrip('/')}"

    def put(self, path, data, mtime=None):
        """Publishes `data` at /path atomically (temp file + rename); sets its mtime if given."""
        target = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = target + ".tmp-upload"
        with open(tmp, "wb") as f:
            f.write(data)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)

    def requests(self):
        """The requests nginx logged so far: dicts with method, uri, host, status, bytes,
        if_none_match, if_modified_since, authorization, user_agent."""
        path = os.path.join(self.dir, "access.log")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class Response:
    """A scripted answer of FaultServer.

    kind: "normal"; "truncate" (Content-Length says `declared_length`, fewer bytes are sent,
    then the connection closes); "stall" (nothing is sent until the server stops);
    "slow" (the body in `chunk`-byte pieces, `delay` seconds apart).
    """

    def __init__(self, status=200, headers=None, body=b"", kind="normal", declared_length=None,
                 chunk=65536, delay=0.0):
        self.status = status
        self.headers = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.kind = kind
        self.declared_length = declared_length
        self.chunk = chunk
        self.delay = delay


class Request:
    """A request as FaultServer received it."""

    def __init__(self, method, path, headers):
        self.method = method
        self.path = path
        self.headers = headers  # [(name, value)] in order, values as received

    def header(self, name):
        """The first value of a header (name case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        owner = self.server.owner
        owner._record(Request(self.command, self.path, list(self.headers.items())))
        response = owner._next()
        self.close_connection = True
        if response.kind == "stall":
            owner._stopping.wait(timeout=300)
            return
        self.send_response_only(response.status)
        names = {k.lower() for k, _ in response.headers}
        for key, value in response.headers:
            self.send_header(key, value)
        if response.status not in (204, 304) and "content-length" not in names \
                and "transfer-encoding" not in names:
            length = response.declared_length if response.kind == "truncate" \
                else len(response.body)
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        if response.kind == "slow":
            for i in range(0, len(response.body), response.chunk):
                if owner._stopping.wait(timeout=response.delay):
                    return
                self.wfile.write(response.body[i:i + response.chunk])
                self.wfile.flush()
        else:
            self.wfile.write(response.body)
        self.wfile.flush()

    do_HEAD = do_GET
    do_POST = do_GET


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultServer:
    """A scriptable HTTPS server on 127.0.0.1 (same certificates as NginxCdn).

    with FaultServer() as fault:
        fault.queue(503, {"Retry-After": "1"}).queue(200, body=datafile)
        run(..., *fault.args())
        fault.requests[1].header("If-None-Match")
    With nothing queued it answers 599 "no response queued", so a test that expects fewer
    requests fails visibly.
    """

    def __init__(self, certs=None):
        self.certs = certs or certificates()
        self.requests = []
        self._responses = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.cert, self.certs.key)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        # The TLS handshake runs in the handler's thread, so a stalled client blocks no one.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def args(self, hosts=HOSTS):
        return network_args(self.port, self.certs, hosts)

    def queue(self, status=200, headers=None, body=b"", **kwargs):
        """Queues the next answer (see Response); returns self for chaining."""
        with self._lock:
            self._responses.append(Response(status, headers, body, **kwargs))
        return self

    def queue_html(self, status=200):
        return self.queue(status, {"Content-Type": "text/html"},
                          b"<!DOCTYPE html><html><body>Access denied</body></html>")

    def queue_truncated(self, body, declared_length, headers=None):
        return self.queue(200, headers, body, kind="truncate", declared_length=declared_length)

    def queue_stall(self):
        return self.queue(kind="stall")

    def queue_slow(self, body, chunk=65536, delay=0.01, headers=None):
        return self.queue(200, headers, body, kind="slow", chunk=chunk, delay=delay)

    def queue_redirect(self, location, status=302):
        return self.queue(status, {"Location": location})

    def wait_for_requests(self, count, timeout=10):
        """Waits until `count` requests arrived; returns whether they did."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.requests) >= count, timeout=timeout)

    def pending(self):
        with self._lock:
            return len(self._responses)

    def _record(self, request):
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def _next(self):
        with self._lock:
            if self._responses:
                return self._responses.pop(0)
        return Response(599, {"Content-Type": "text/plain"}, b"no response queued")


def generate_datafile(project_id, revision, flags, sdk_key=""):
    """Bytes of scripts/gen-datafile.py's datafile."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "gen-datafile.py")
    args = ["/usr/bin/python3", script, "--project-id", str(project_id),
            "--revision", str(revision), "--flags", str(flags)]
    if sdk_key:
        args += ["--sdk-key", sdk_key]
    return _run(args).stdout

