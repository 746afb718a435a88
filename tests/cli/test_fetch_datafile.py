"""dfhook fetch-datafile: the cron fallback poll (DESIGN §3 fetch-datafile, §5), against a local
nginx CDN and the scripted fault server."""

import fcntl
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import cdn
from dfhook_test import DFHOOK, main, read_fixture, run
from listener import Listener, sign

DATAFILE_R1 = read_fixture("datafile-1234-r1.json")
SDK_DATAFILE = read_fixture("datafile-TestSdkKey123-r87.json")


class FetchDatafile(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dfhook-fetch-")
        self.dir = self._tmp.name
        self.out = os.path.join(self.dir, "out")

    def tearDown(self):
        self._tmp.cleanup()

    def fetch(self, server, *args, env=None, timeout=60):
        return run("fetch-datafile", "--out-dir", self.out, *server.args(), *args, env=env,
                   timeout=timeout)

    def path(self, name="1234.json"):
        return os.path.join(self.out, name)

    def stored(self, name="1234.json"):
        with open(self.path(name), "rb") as f:
            return f.read()

    def meta(self, name="1234.json"):
        with open(os.path.join(self.out, ".dfhook", name + ".meta.json"), "rb") as f:
            return f.read()

    def test_first_fetch_prints_one_line_then_a_conditional_get_is_silent(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1, mtime=1_700_000_000)
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual((result.code, result.out, result.err),
                             (0, "updated 1234.json revision 1 (8.0 KiB)\n", ""), result)
            self.assertEqual(self.stored(), DATAFILE_R1)
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual((result.code, result.out, result.err), (0, "", ""), result)
            first, second = server.requests()
            self.assertEqual((first["status"], second["status"]), (200, 304))
            self.assertEqual(first["if_none_match"], "")
            self.assertNotEqual(second["if_none_match"], "")
            self.assertEqual(second["if_modified_since"], "Tue, 14 Nov 2023 22:13:20 GMT")

    def test_quiet_prints_nothing_but_errors(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            result = run("-q", "fetch-datafile", "--out-dir", self.out, "--project-id", "1234",
                         *server.args())
            self.assertEqual((result.code, result.out, result.err), (0, "", ""), result)
            self.assertEqual(self.stored(), DATAFILE_R1)

    def test_a_new_revision_prints_old_and_new(self):
        r42 = cdn.generate_datafile(1234, 42, 3)
        with cdn.NginxCdn() as server:
            # nginx's ETag is mtime-size: give each version its own mtime, as a CDN would.
            server.put("json/1234.json", cdn.generate_datafile(1234, 41, 3), mtime=1_700_000_000)
            self.assertEqual(self.fetch(server, "--project-id", "1234").code, 0)
            server.put("json/1234.json", r42, mtime=1_700_000_060)
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual(result.code, 0, result)
            self.assertRegex(result.out, r"^updated 1234\.json revision 41 -> 42 \(\d+\.\d KiB\)\n$")
            self.assertEqual(self.stored(), r42)

    def test_bad_bodies_exit_1_and_leave_the_old_file_and_validators(self):
        cases = {
            "html": (b"<!DOCTYPE html><html><body>Access denied</body></html>", ":1:1: "),
            "truncated": (DATAFILE_R1[:300], "invalid datafile"),
            "empty": (b"", ":1:1: invalid datafile"),
            "not an object": (b"[1,2,3]", ":1:1: invalid datafile"),
            "other project": (cdn.generate_datafile(5678, 2, 1),
                              "/projectId: expected project '1234', found '5678'"),
            "unsupported version": (DATAFILE_R1.replace(b'"version": "4"', b'"version": "5"'),
                                    "/version: "),
        }
        with cdn.FaultServer() as server:
            server.queue(200, {"ETag": '"v1"'}, DATAFILE_R1)
            self.assertEqual(self.fetch(server, "--project-id", "1234").code, 0)
            meta = self.meta()
            for name, (body, expected) in cases.items():
                with self.subTest(name):
                    server.queue(200, {"ETag": '"bad"'}, body)
                    result = self.fetch(server, "--project-id", "1234", "--force")
                    self.assertEqual(result.code, 1, result)
                    self.assertEqual(result.out, "")
                    self.assertTrue(result.err.startswith(
                        "dfhook: error: 'https://cdn.optimizely.com/json/1234.json':"), result.err)
                    self.assertIn(expected, result.err)
                    self.assertEqual(self.stored(), DATAFILE_R1)
                    self.assertEqual(self.meta(), meta)
            self.assertEqual(sorted(os.listdir(self.out)), [".dfhook", "1234.json"])

    def test_a_stalled_server_fails_within_the_timeout_leaving_no_partial_file(self):
        with cdn.FaultServer() as server:
            server.queue_stall()
            started = time.monotonic()
            result = self.fetch(server, "--project-id", "1234", "--retries", "0",
                                "--timeout", "1s")
            elapsed = time.monotonic() - started
            self.assertEqual(result.code, 1, result)
            self.assertLess(elapsed, 2.0)
            self.assertIn("cannot download 'https://cdn.optimizely.com/json/1234.json': ",
                          result.err)
            self.assertIn("timed out", result.err.lower())
            self.assertFalse(os.path.exists(self.path()))
            self.assertEqual(os.listdir(os.path.join(self.out, ".dfhook")), [])
            # The lock is free: the next run gets it at once.
            server.queue(200, {}, DATAFILE_R1)
            result = self.fetch(server, "--project-id", "1234", "--lock-timeout", "0")
            self.assertEqual(result.code, 0, result)

    def test_weak_etag_and_last_modified_come_back_byte_identical(self):
        etag = 'W/"5f-abc def"'
        last_modified = "Tue, 01 Aug 2023 10:00:00 GMT"
        with cdn.FaultServer() as server:
            server.queue(200, {"ETag": etag, "Last-Modified": last_modified}, DATAFILE_R1)
            server.queue(304, {"ETag": etag})
            self.assertEqual(self.fetch(server, "--project-id", "1234").code, 0)
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual((result.code, result.out), (0, ""), result)
            self.assertEqual(server.requests[1].header("If-None-Match"), etag)
            self.assertEqual(server.requests[1].header("If-Modified-Since"), last_modified)

    def test_a_deleted_or_corrupted_local_copy_is_downloaded_again(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            self.assertEqual(self.fetch(server, "--project-id", "1234").code, 0)
            with open(self.path(), "r+b") as f:
                f.write(b"XX")
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual(result.code, 0, result)
            self.assertEqual(self.stored(), DATAFILE_R1)
            os.remove(self.path())
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual(result.code, 0, result)
            self.assertEqual(self.stored(), DATAFILE_R1)
            self.assertEqual([r["status"] for r in server.requests()], [200, 200, 200])
            self.assertEqual([r["if_none_match"] for r in server.requests()], ["", "", ""])

    def test_a_redirect_to_a_host_not_allowed_is_refused(self):
        with cdn.FaultServer() as server:
            server.queue_redirect("https://evil.example/1234.json")
            result = self.fetch(server, "--project-id", "1234")
            self.assertEqual(result.code, 1, result)
            self.assertEqual(result.err,
                             "dfhook: error: cannot download "
                             "'https://cdn.optimizely.com/json/1234.json': redirected to "
                             "'https://evil.example/1234.json': host 'evil.example' is not "
                             "allowed\n")
            self.assertEqual(len(server.requests), 1)

    def test_429_with_retry_after_then_200_succeeds(self):
        with cdn.FaultServer() as server:
            server.queue(429, {"Retry-After": "0"}).queue(200, {}, DATAFILE_R1)
            result = self.fetch(server, "--project-id", "1234", "--retries", "1")
            self.assertEqual(result.code, 0, result)
            self.assertEqual(len(server.requests), 2)

    def test_a_held_lock_exits_3(self):
        with cdn.FaultServer() as server:
            server.queue(200, {}, DATAFILE_R1)
            os.makedirs(os.path.join(self.out, ".dfhook"))
            with open(os.path.join(self.out, ".dfhook", "1234.json.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                result = self.fetch(server, "--project-id", "1234", "--lock-timeout", "100ms")
            self.assertEqual(result.code, 3, result)
            self.assertIn("another dfhook holds the lock", result.err)
            self.assertFalse(os.path.exists(self.path()))

    def test_hook_runs_with_its_environment_and_a_failing_hook_exits_4(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1, mtime=1_700_000_000)
            hook = 'echo "$DFHOOK_REVISION:$DFHOOK_PREVIOUS_REVISION:$DFHOOK_PROJECT_ID" > "$OUT"'
            out = os.path.join(self.dir, "hook.out")
            result = self.fetch(server, "--project-id", "1234", "--on-update", hook,
                                env={"OUT": out})
            self.assertEqual(result.code, 0, result)
            with open(out) as f:
                self.assertEqual(f.read(), "1::1234\n")
            server.put("json/1234.json", cdn.generate_datafile(1234, 2, 1), mtime=1_700_000_060)
            result = self.fetch(server, "--project-id", "1234",
                                "--on-update", "echo reload refused >&2; exit 3")
            self.assertEqual(result.code, 4, result)
            self.assertEqual(result.out.split(" (")[0], "updated 1234.json revision 1 -> 2")
            self.assertEqual(result.err,
                             "dfhook: error: the datafile was updated but the hook failed: "
                             "exited with status 3\nhint: the hook said: reload refused\n")
            self.assertEqual(self.stored(), cdn.generate_datafile(1234, 2, 1))

    def test_sdk_key_with_a_token_uses_the_authenticated_url_and_never_shows_the_token(self):
        tokens = os.path.join(self.dir, "tokens")
        with open(tokens, "w") as f:
            f.write("TestSdkKey123 s3cr3t-token\n")
        with cdn.NginxCdn() as server:
            server.put("datafiles/auth/TestSdkKey123.json", SDK_DATAFILE)
            result = self.fetch(server, "--sdk-key", "TestSdkKey123", "--auth-token-file", tokens)
            self.assertEqual(result.code, 0, result)
            self.assertEqual(self.stored("TestSdkKey123.json"), SDK_DATAFILE)
            request = server.requests()[0]
            self.assertEqual((request["host"], request["authorization"]),
                             ("config.optimizely.com", "Bearer s3cr3t-token"))
            result = self.fetch(server, "--sdk-key", "Missing", env={"DFHOOK_AUTH_TOKEN": "s3cr3t-token"})
            self.assertEqual(result.code, 1, result)
            self.assertIn("HTTP 404", result.err)
            self.assertNotIn("s3cr3t", result.err + result.out)

    def test_sdk_key_without_a_token_uses_the_cdn(self):
        with cdn.NginxCdn() as server:
            server.put("datafiles/TestSdkKey123.json", SDK_DATAFILE)
            out = os.path.join(self.dir, "app", "datafile.json")
            result = run("fetch-datafile", "--sdk-key", "TestSdkKey123", "--out", out,
                         *server.args())
            self.assertEqual(result.code, 0, result)
            self.assertEqual(result.out, "updated datafile.json revision 87 (252.4 KiB)\n")
            with open(out, "rb") as f:
                self.assertEqual(f.read(), SDK_DATAFILE)

    def test_usage_errors_exit_2(self):
        for args in ([], ["--project-id", "1", "--sdk-key", "k"], ["--url", "not a url"],
                     ["--project-id", "1", "--timeout", "soon"]):
            with self.subTest(args):
                result = run("fetch-datafile", *args)
                self.assertEqual(result.code, 2, result)
                self.assertTrue(result.err.startswith("dfhook: error: "), result.err)

    def test_a_token_with_a_line_break_is_a_usage_error_never_a_header(self):
        result = run("fetch-datafile", "--sdk-key", "K", "--out-dir", self.out,
                     env={"DFHOOK_AUTH_TOKEN": "tok\r\nX-Injected: yes"})
        self.assertEqual(result.code, 2, result)
        self.assertTrue(result.err.startswith(
            "dfhook: error: DFHOOK_AUTH_TOKEN: the token holds a character that cannot be sent"),
            result.err)
        self.assertNotIn("Injected", result.err)

    def test_a_slower_older_download_never_replaces_a_newer_one(self):
        r5 = cdn.generate_datafile(1234, 5, 2)
        r6 = cdn.generate_datafile(1234, 6, 2)
        with cdn.FaultServer() as server:
            server.queue_slow(r5, chunk=512, delay=0.02).queue(200, {}, r6)
            args = ["fetch-datafile", "--out-dir", self.out, "--project-id", "1234",
                    *server.args()]
            env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
            slow = subprocess.Popen([DFHOOK, *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
            try:
                self.assertTrue(server.wait_for_requests(1))
                fast = self.fetch(server, "--project-id", "1234")
                self.assertEqual(fast.code, 0, fast)
                out, err = slow.communicate(timeout=60)
            finally:
                if slow.poll() is None:
                    slow.kill()
                    slow.wait()
            self.assertEqual(slow.returncode, 0, err)
            self.assertEqual(out, b"")
            self.assertIn(b"older than the stored 6", err)
        self.assertEqual(self.stored(), r6)

    def test_a_run_racing_listen_never_takes_the_revision_back(self):
        r5 = cdn.generate_datafile(1234, 5, 2)
        r6 = cdn.generate_datafile(1234, 6, 2)
        body = json.dumps({"project_id": 1234, "timestamp": 1468447113,
                           "event": "project.datafile_updated",
                           "data": {"revision": 6,
                                    "origin_url": "https://optimizely.s3.amazonaws.com/json/1234.json",
                                    "cdn_url": "https://cdn.optimizely.com/json/1234.json"}}).encode()
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", r6)
            args = ["--out-dir", self.out, *server.args()]
            with Listener(args, env={"DFHOOK_SECRET": "test-webhook-secret"}) as listener:
                self.assertEqual(listener.post(body, sign(body))[0], 202)
                listener.wait_for_log(lambda l: l.get("msg") == "datafile updated")
                server.put("json/1234.json", r5)
                result = self.fetch(server, "--project-id", "1234", "--force")
                self.assertEqual((result.code, result.out), (0, ""), result)
                self.assertEqual(self.stored(), r6)
                result = self.fetch(server, "--project-id", "1234", "--force",
                                    "--allow-downgrade")
                self.assertEqual(result.out.split(" (")[0], "updated 1234.json revision 6 -> 5")
        self.assertEqual(self.stored(), r5)

    def test_sigkill_mid_write_leaves_the_complete_old_or_new_datafile(self):
        versions = {n: cdn.generate_datafile(1234, n, 4000) for n in (1, 2)}
        seen = set()
        bad = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    with open(self.path(), "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue
                for number, version in versions.items():
                    if data == version:
                        seen.add(number)
                        break
                else:
                    bad.append(len(data))

        with cdn.NginxCdn() as server:
            server.put("json/1234.json", versions[1])
            self.assertEqual(self.fetch(server, "--project-id", "1234").code, 0)
            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
            env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
            try:
                for attempt in range(16):
                    current = 2 if attempt % 2 == 0 else 1
                    server.put("json/1234.json", versions[current], mtime=1_700_000_000 + current)
                    process = subprocess.Popen(
                        [DFHOOK, "fetch-datafile", "--out-dir", self.out, "--project-id", "1234",
                         "--force", "--allow-downgrade", *server.args()],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                    # Kill it at a different point of its run each time.
                    time.sleep(0.01 * attempt)
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    self.assertIn(self.stored(), (versions[1], versions[2]))
                # A run after all the killed ones finds a consistent store and completes.
                server.put("json/1234.json", versions[2], mtime=1_700_000_002)
                result = self.fetch(server, "--project-id", "1234", "--allow-downgrade")
                self.assertEqual(result.code, 0, result)
            finally:
                stop.set()
                thread.join(timeout=10)
        self.assertEqual(self.stored(), versions[2])
        self.assertEqual(bad, [])
        self.assertIn(1, seen)
        # Killed writers may leave their hidden temporary files (removed by a later run once
        # they are a minute old); nothing else.
        leftovers = [n for n in os.listdir(self.out) if n not in (".dfhook", "1234.json")]
        self.assertTrue(all(n.startswith(".1234.json.tmp.") for n in leftovers), leftovers)


if __name__ == "__main__":
    main()
