#!/usr/bin/env python3
"""The time from a webhook sent to its datafile on disk, for a running `dfhook listen`.

    update_latency.py UPDATES FLAGS     (run by bench/listen/run.sh, which sets the environment)

For each of UPDATES updates with increasing revisions: a datafile from scripts/gen-datafile.py
(--flags FLAGS) is published on the local CDN (temp file + rename, a distinct mtime so nginx's
ETag changes), the signed webhook for that revision is POSTed on a new connection, and
the rename of the datafile into the out-dir is caught with inotify (IN_MOVED_TO). Measured per
update, with CLOCK_MONOTONIC:
  total      from just before the request is written to the inotify event being read;
  then, from the logs, the download time as nginx saw it ($request_time, ms resolution) and as
  dfhook saw it (fetch_ms of its "datafile updated" line, whole ms, truncated);
  beyond     total minus the download time (both ways);
  after_cdn  from nginx logging the response ($msec, ms resolution, wall clock) to the rename
             being read here (wall clock).
Each measurement waits at most 10 s; the whole run is bounded by UPDATES.
"""

import ctypes
import ctypes.util
import hashlib
import hmac
import http.client
import json
import os
import select
import statistics
import struct
import subprocess
import sys
import time
import urllib.parse

IN_MOVED_TO = 0x00000080
IN_CLOSE_WRITE = 0x00000008
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NAME = "1234.json"


class Inotify:
    def __init__(self, directory):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if self.libc.inotify_add_watch(self.fd, directory.encode(), IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def wait_for(self, name, timeout):
        """The monotonic time at which a rename to `name` was read, or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            seen = time.monotonic()
            data = os.read(self.fd, 65536)
            offset = 0
            while offset < len(data):
                _, _, _, length = struct.unpack_from("iIII", data, offset)
                raw = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                if raw == name:
                    return seen

    def drain(self):
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass


def wait_line(path, offset, predicate, timeout=10):
    """The first JSON line after byte `offset` of the file for which predicate is true; polls
    at most timeout s. (The log holds the floods' lines too: it is never read from the start.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            f.seek(offset)
            for raw in f:
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if isinstance(line, dict) and predicate(line):
                    return line
        time.sleep(0.02)
    raise SystemExit(f"no matching line in {path} within {timeout}s")


def payload(revision):
    body = {"project_id": 1234, "timestamp": 1468447113, "event": "project.datafile_updated",
            "data": {"revision": revision,
                     "origin_url": "https://optimizely.s3.amazonaws.com/json/1234.json",
                     "cdn_url": "https://cdn.optimizely.com/json/1234.json"}}
    return json.dumps(body, separators=(",", ":")).encode()


def summary(name, values, unit):
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return (f"| {name} | {statistics.median(values):.2f} | {p90:.2f} | {values[0]:.2f} | "
            f"{values[-1]:.2f} | {unit} |")


def main():
    updates, flags = int(sys.argv[1]), int(sys.argv[2])
    url = urllib.parse.urlsplit(os.environ["DFHOOK_URL"])
    out_dir, cdn_root = os.environ["OUT_DIR"], os.environ["CDN_ROOT"]
    cdn_log, dfhook_log = os.environ["CDN_LOG"], os.environ["DFHOOK_LOG"]
    secret = os.environ["SECRET"].encode()
    with open(os.path.join(out_dir, ".dfhook", NAME + ".meta.json"), encoding="utf-8") as f:
        first = json.load(f)["revision"] + 1
    watch = Inotify(out_dir)
    rows = []
    sizes = set()
    mtime = int(time.time()) - 100000
    for revision in range(first, first + updates):
        datafile = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", "gen-datafile.py"), "--project-id",
             "1234", "--revision", str(revision), "--flags", str(flags)],
            check=True, capture_output=True, timeout=60).stdout
        sizes.add(len(datafile))
        target = os.path.join(cdn_root, "json", NAME)
        with open(target + ".tmp", "wb") as f:
            f.write(datafile)
        os.utime(target + ".tmp", (mtime + revision, mtime + revision))
        os.replace(target + ".tmp", target)
        body = payload(revision)
        signature = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
        watch.drain()
        cdn_offset = os.path.getsize(cdn_log)
        log_offset = os.path.getsize(dfhook_log)
        # A new connection per delivery, as a webhook sender opens one: its connect is timed.
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        sent = time.monotonic()
        conn.request("POST", url.path, body=body,
                     headers={"Content-Type": "application/json", "X-Hub-Signature": signature})
        response = conn.getresponse()
        answer = response.read()
        answered = time.monotonic()
        conn.close()
        if response.status != 202:
            raise SystemExit(f"revision {revision}: {response.status} {answer!r}")
        stored = watch.wait_for(NAME, timeout=10)
        stored_wall = time.time()
        if stored is None:
            raise SystemExit(f"revision {revision}: no rename of {NAME} within 10 s")
        updated = wait_line(dfhook_log, log_offset, lambda l, r=str(revision): l.get("msg") ==
                            "datafile updated" and l.get("revision") == r)
        with open(cdn_log, "rb") as f:
            f.seek(cdn_offset)
            fetched = [json.loads(line) for line in f]
        fetched = [entry for entry in fetched if entry["uri"] == "/json/" + NAME]
        if len(fetched) != 1 or fetched[0]["status"] != 200:
            raise SystemExit(f"revision {revision}: CDN requests {fetched}")
        total_ms = (stored - sent) * 1000
        request_ms = float(fetched[0]["request_time"]) * 1000
        rows.append({"total": total_ms, "answer": (answered - sent) * 1000,
                     "request_time": request_ms, "fetch_ms": float(updated["fetch_ms"]),
                     "beyond_nginx": total_ms - request_ms,
                     "beyond_fetch_ms": total_ms - float(updated["fetch_ms"]),
                     "after_cdn": (stored_wall - float(fetched[0]["msec"])) * 1000,
                     "connection": fetched[0].get("connection")})
    print(f"{updates} updates, revisions {first}..{first + updates - 1}, datafiles of "
          f"{min(sizes)}..{max(sizes)} bytes (gen-datafile.py --flags {flags}), downloaded over "
          f"{len({r['connection'] for r in rows})} TLS connection(s)")
    print("| measure | median | p90 | min | max | unit |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(summary("POST sent -> 202 read", [r["answer"] for r in rows], "ms"))
    print(summary("POST sent -> rename seen (total)", [r["total"] for r in rows], "ms"))
    print(summary("download, nginx $request_time", [r["request_time"] for r in rows], "ms"))
    print(summary("download, dfhook fetch_ms", [r["fetch_ms"] for r in rows], "ms"))
    print(summary("total - $request_time", [r["beyond_nginx"] for r in rows], "ms"))
    print(summary("total - fetch_ms", [r["beyond_fetch_ms"] for r in rows], "ms"))
    print(summary("nginx $msec -> rename seen", [r["after_cdn"] for r in rows], "ms"))


if __name__ == "__main__":
    main()
