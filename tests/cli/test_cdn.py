"""The test servers themselves: what the other CLI tests rely on them to do, checked with curl."""

import subprocess
import unittest

import cdn
from dfhook_test import main


def curl(server, url, *extra):
    """Runs curl against `server` the way dfhook is pointed at it; returns (code, head, body)."""
    args = ["curl", "-sS", "-D", "-", "--cacert", server.certs.ca]
    for host in cdn.HOSTS:
        args += ["--connect-to", f"{host}:443:127.0.0.1:{server.port}"]
    completed = subprocess.run([*args, *extra, url], capture_output=True, timeout=30, check=False)
    head, _, body = completed.stdout.partition(b"\r\n\r\n")
    return completed.returncode, head.decode("latin-1"), body


def header(head, name):
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class NginxCdnServes(unittest.TestCase):
    def test_serves_files_for_every_optimizely_host_with_validators_and_304(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", b'{"revision":"1"}', mtime=1_700_000_000)
            for host in cdn.HOSTS:
                code, head, body = curl(server, server.url("json/1234.json", host))
                self.assertEqual(code, 0)
                self.assertTrue(head.startswith("HTTP/1.1 200"), head)
                self.assertEqual(body, b'{"revision":"1"}')
            etag = header(head, "ETag")
            self.assertEqual(header(head, "Last-Modified"), "Tue, 14 Nov 2023 22:13:20 GMT")
            code, head, body = curl(server, server.url("json/1234.json"),
                                    "-H", f"If-None-Match: {etag}")
            self.assertTrue(head.startswith("HTTP/1.1 304"), head)
            self.assertEqual(body, b"")
            logged = server.requests()
            self.assertEqual([r["status"] for r in logged], [200, 200, 200, 304])
            self.assertEqual(logged[-1]["if_none_match"], etag)

    def test_stops_by_pid(self):
        server = cdn.NginxCdn()
        server.start()
        process = server.process
        server.stop()
        self.assertIsNotNone(process.poll())


class FaultServerAnswers(unittest.TestCase):
    def test_answers_in_queue_order_and_records_headers(self):
        with cdn.FaultServer() as server:
            server.queue(503, {"Retry-After": "1"}).queue_redirect("https://evil.example/x")
            code, head, _ = curl(server, "https://cdn.optimizely.com/json/1.json",
                                 "-H", 'If-None-Match: W/"a b"')
            self.assertTrue(head.startswith("HTTP/1.1 503"), head)
            self.assertEqual(header(head, "Retry-After"), "1")
            code, head, _ = curl(server, "https://optimizely.s3.amazonaws.com/json/1.json")
            self.assertEqual(header(head, "Location"), "https://evil.example/x")
            code, head, body = curl(server, "https://cdn.optimizely.com/json/1.json")
            self.assertTrue(head.startswith("HTTP/1.1 599"), head)
            self.assertEqual(len(server.requests), 3)
            self.assertEqual(server.requests[0].header("if-none-match"), 'W/"a b"')
            self.assertEqual(server.requests[1].header("Host"), "optimizely.s3.amazonaws.com")

    def test_truncated_body_is_cut_short(self):
        with cdn.FaultServer() as server:
            server.queue_truncated(b'{"a":', declared_length=100)
            code, _, body = curl(server, "https://cdn.optimizely.com/json/1.json")
            self.assertEqual(code, 18)  # CURLE_PARTIAL_FILE
            self.assertEqual(body, b'{"a":')

    def test_stall_sends_nothing(self):
        with cdn.FaultServer() as server:
            server.queue_stall()
            code, _, body = curl(server, "https://cdn.optimizely.com/json/1.json",
                                 "--max-time", "0.5")
            self.assertEqual(code, 28)  # CURLE_OPERATION_TIMEDOUT
            self.assertEqual(body, b"")


if __name__ == "__main__":
    main()
