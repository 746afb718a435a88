"""listen end to end: a signed webhook, a download from a local HTTPS CDN, the datafile stored
atomically, the hook run (DESIGN §3 listen, §5)."""

import json
import os
import signal
import tempfile
import time
import unittest

import cdn
from dfhook_test import main, read_fixture
from listener import SECRET, Listener, sign

DATAFILE_R1 = read_fixture("datafile-1234-r1.json")
SEED = read_fixture("seed-payload.json")
HOOK = 'printf "%s\\n" "$(env | grep ^DFHOOK_ | sort | tr "\\n" " ")" >> "$HOOK_LOG"'


def payload(revision, project_id=1234, path="json/1234.json"):
    body = {"project_id": project_id, "timestamp": 1468447113,
            "event": "project.datafile_updated",
            "data": {"revision": revision,
                     "origin_url": f"https://optimizely.s3.amazonaws.com/{path}",
                     "cdn_url": f"https://cdn.optimizely.com/{path}"}}
    return json.dumps(body, separators=(",", ":")).encode()


def is_msg(text):
    return lambda line: line.get("msg") == text


class ListenUpdates(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dfhook-listen-update-")
        self.dir = self._tmp.name
        self.out = os.path.join(self.dir, "out")
        self.hook_log = os.path.join(self.dir, "hook.log")
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")

    def tearDown(self):
        self._tmp.cleanup()

    def listen(self, server, *extra, env=None):
        args = ["--out-dir", self.out, "--on-update", HOOK, *server.args(), *extra]
        all_env = {"HOOK_LOG": self.hook_log}
        all_env.update(env or {"DFHOOK_SECRET": SECRET})
        return Listener(args, env=all_env)

    def stored(self, name="1234.json"):
        with open(os.path.join(self.out, name), "rb") as f:
            return f.read()

    def hook_runs(self):
        if not os.path.exists(self.hook_log):
            return []
        with open(self.hook_log) as f:
            return [dict(item.split("=", 1) for item in line.split())
                    for line in f if line.strip()]

    def test_documented_payload_is_downloaded_stored_byte_for_byte_and_hooked_once(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            with self.listen(server) as listener:
                status, answer = listener.post(SEED, sign(SEED))
                self.assertEqual((status, answer), (202, {"status": "accepted", "revision": 1}))
                listener.wait_for_log(is_msg("hook ran"))
                self.assertEqual(self.stored(), DATAFILE_R1)
                runs = self.hook_runs()
                self.assertEqual(len(runs), 1)
                self.assertEqual(runs[0], {
                    "DFHOOK_DATAFILE": os.path.join(self.out, "1234.json"),
                    "DFHOOK_PREVIOUS_REVISION": "",
                    "DFHOOK_PROJECT_ID": "1234",
                    "DFHOOK_REVISION": "1"})

                status, answer = listener.post(SEED, sign(SEED))
                self.assertEqual((status, answer), (200, {"status": "up-to-date"}))
                self.assertEqual(listener.metric("dfhook_updates_total"), 1)
            self.assertEqual([r["uri"] for r in server.requests()], ["/json/1234.json"])
            self.assertEqual(len(self.hook_runs()), 1)
            with open(os.path.join(self.out, ".dfhook", "1234.json.meta.json")) as f:
                meta = json.load(f)
            self.assertEqual(meta["revision"], 1)
            self.assertEqual(meta["size"], len(DATAFILE_R1))

    def test_revision_10_after_9_is_newer_and_an_older_webhook_is_up_to_date(self):
        r9 = cdn.generate_datafile(1234, 9, 2)
        r10 = cdn.generate_datafile(1234, 10, 2)
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", r9)
            with self.listen(server) as listener:
                self.assertEqual(listener.post(payload(9), sign(payload(9)))[0], 202)
                listener.wait_for_log(is_msg("hook ran"))
                server.put("json/1234.json", r10)
                self.assertEqual(listener.post(payload(10), sign(payload(10)))[0], 202)
                listener.wait_for_log(lambda l: l.get("msg") == "datafile updated"
                                      and l.get("revision") == "10")
                listener.wait_for_log(is_msg("hook ran"), start=len(listener.lines) - 1)
                self.assertEqual(self.stored(), r10)
                status, answer = listener.post(payload(8), sign(payload(8)))
                self.assertEqual((status, answer), (200, {"status": "up-to-date"}))
            self.assertEqual(self.stored(), r10)
            self.assertEqual(len(server.requests()), 2)
            runs = self.hook_runs()
            self.assertEqual([(r["DFHOOK_REVISION"], r["DFHOOK_PREVIOUS_REVISION"]) for r in runs],
                             [("9", ""), ("10", "9")])

    def test_hook_environment_never_holds_the_secret_or_token(self):
        tokens = os.path.join(self.dir, "tokens")
        with open(tokens, "w") as f:
            f.write("hunter2-token\n")
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            with self.listen(server, "--auth-token-file", tokens) as listener:
                listener.post(SEED, sign(SEED))
                listener.wait_for_log(is_msg("hook ran"))
                log = listener.log_text()
            # A /json/ datafile has no authenticated twin: no token is sent for it.
            self.assertEqual(server.requests()[0]["authorization"], "")
        with open(self.hook_log) as f:
            text = f.read()
        self.assertIn("DFHOOK_REVISION=1", text)
        self.assertNotIn(SECRET, text)
        self.assertNotIn("hunter2", text)
        self.assertNotIn("hunter2", log)

    def test_sdk_key_datafile_with_a_token_comes_from_the_authenticated_url(self):
        tokens = os.path.join(self.dir, "tokens")
        with open(tokens, "w") as f:
            f.write("TestSdkKey123 sdk-token\n")
        body = read_fixture("payload-environment.json")
        datafile = read_fixture("datafile-TestSdkKey123-r87.json")
        with cdn.NginxCdn() as server:
            server.put("datafiles/auth/TestSdkKey123.json", datafile)
            with self.listen(server, "--auth-token-file", tokens) as listener:
                self.assertEqual(listener.post(body, sign(body))[0], 202)
                listener.wait_for_log(is_msg("hook ran"))
            self.assertEqual(self.stored("TestSdkKey123.json"), datafile)
            request = server.requests()[0]
            self.assertEqual((request["host"], request["uri"], request["authorization"]),
                             ("config.optimizely.com", "/datafiles/auth/TestSdkKey123.json",
                              "Bearer sdk-token"))
            runs = self.hook_runs()
            self.assertEqual(runs[0]["DFHOOK_ENVIRONMENT"], "Production")
            self.assertEqual(runs[0]["DFHOOK_PROJECT_ID"], "10847551550")

    def test_wrong_signature_fetches_nothing(self):
        with cdn.FaultServer() as server:
            with self.listen(server) as listener:
                self.assertEqual(listener.post(SEED, "sha1=" + "0" * 40)[0], 401)
                self.assertEqual(listener.post(SEED)[0], 401)
                self.assertEqual(listener.metric("dfhook_signature_failures_total"), 2)
            self.assertEqual(server.requests, [])
        self.assertFalse(os.path.exists(os.path.join(self.out, "1234.json")))

    def test_cdn_503_then_200_is_done_once(self):
        with cdn.FaultServer() as server:
            server.queue(503, {"Retry-After": "0"}).queue(200, {}, DATAFILE_R1)
            with self.listen(server) as listener:
                self.assertEqual(listener.post(SEED, sign(SEED))[0], 202)
                listener.wait_for_log(is_msg("hook ran"))
                self.assertEqual(listener.metric("dfhook_updates_total"), 1)
                self.assertEqual(listener.metric("dfhook_fetch_errors_total"), 0)
            self.assertEqual(len(server.requests), 2)
        self.assertEqual(self.stored(), DATAFILE_R1)
        self.assertEqual(len(self.hook_runs()), 1)

    def test_stale_cdn_then_fresh_origin_is_written_once_and_hooked_once(self):
        r1 = cdn.generate_datafile(1234, 1, 1)
        r2 = cdn.generate_datafile(1234, 2, 1)
        with cdn.FaultServer() as server:
            server.queue(200, {}, r1).queue(200, {}, r2)
            with self.listen(server) as listener:
                self.assertEqual(listener.post(payload(2), sign(payload(2)))[0], 202)
                listener.wait_for_log(is_msg("hook ran"))
                self.assertEqual(listener.metric("dfhook_stale_retries_total"), 1)
                self.assertEqual(listener.metric("dfhook_updates_total"), 1)
            hosts = [r.header("Host") for r in server.requests]
            self.assertEqual(hosts, ["cdn.optimizely.com", "optimizely.s3.amazonaws.com"])
        self.assertEqual(self.stored(), r2)
        self.assertEqual([r["DFHOOK_REVISION"] for r in self.hook_runs()], ["2"])

    def test_bad_datafiles_are_never_stored_and_the_old_file_stays(self):
        other_project = cdn.generate_datafile(5678, 2, 1)
        cases = [
            ("html", lambda s: s.queue_html()),
            ("truncated", lambda s: s.queue(200, {}, DATAFILE_R1[: len(DATAFILE_R1) // 2])),
            ("cut connection", lambda s: s.queue_truncated(DATAFILE_R1[:100], len(DATAFILE_R1))),
            ("other project", lambda s: s.queue(200, {}, other_project)),
        ]
        with cdn.FaultServer() as server:
            server.queue(200, {}, DATAFILE_R1)
            with self.listen(server, "--retries", "0") as listener:
                listener.post(SEED, sign(SEED))
                listener.wait_for_log(is_msg("hook ran"))
                for number, (name, serve) in enumerate(cases, start=1):
                    with self.subTest(name):
                        serve(server)
                        body = payload(2)
                        self.assertEqual(listener.post(body, sign(body))[0], 202)
                        line = listener.wait_for_log(
                            lambda l: l.get("msg") == "update failed"
                            and listener.count_log(is_msg("update failed")) >= number)
                        self.assertIn("1234.json", line["error"])
                        self.assertEqual(self.stored(), DATAFILE_R1)
                        self.assertEqual(listener.metric("dfhook_fetch_errors_total"), number)
                self.assertEqual(listener.metric("dfhook_updates_total"), 1)
        self.assertEqual(len(self.hook_runs()), 1)
        self.assertEqual(sorted(os.listdir(self.out)), [".dfhook", "1234.json"])

    def test_a_hanging_cdn_is_given_up_within_the_timeout_while_requests_are_answered(self):
        with cdn.FaultServer() as server:
            server.queue_stall()
            with self.listen(server, "--retries", "0", "--timeout", "1s") as listener:
                started = time.monotonic()
                self.assertEqual(listener.post(SEED, sign(SEED))[0], 202)
                self.assertTrue(server.wait_for_requests(1))
                status, _, _ = listener.request("GET", "/healthz", timeout=5)
                self.assertEqual(status, 200)
                line = listener.wait_for_log(is_msg("update failed"), timeout=10)
                elapsed = time.monotonic() - started
                self.assertLess(elapsed, 3.0)
                self.assertIn("timed out", line["error"].lower())
        self.assertFalse(os.path.exists(os.path.join(self.out, "1234.json")))

    def test_a_hanging_hook_is_killed_at_the_hook_timeout_and_the_datafile_stays(self):
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            args = ["--out-dir", self.out, "--on-update", "sleep 60", "--hook-timeout", "300ms",
                    *server.args()]
            with Listener(args, env={"DFHOOK_SECRET": SECRET}) as listener:
                listener.post(SEED, sign(SEED))
                line = listener.wait_for_log(is_msg("hook failed"), timeout=20)
                self.assertEqual(line["result"], "timed out after 300ms")
                self.assertEqual(listener.metric("dfhook_hook_failures_total"), 1)
        self.assertEqual(self.stored(), DATAFILE_R1)

    def test_sigterm_waits_for_the_update_in_progress_then_exits_0(self):
        with cdn.FaultServer() as server:
            server.queue_slow(DATAFILE_R1, chunk=1024, delay=0.05)
            listener = self.listen(server)
            listener.start()
            try:
                self.assertEqual(listener.post(SEED, sign(SEED))[0], 202)
                self.assertTrue(server.wait_for_requests(1))
                code = listener.stop(signal.SIGTERM)
            finally:
                listener.stop(signal.SIGKILL)
        self.assertEqual(code, 0)
        self.assertEqual(self.stored(), DATAFILE_R1)
        self.assertEqual(len(self.hook_runs()), 1)
        messages = [line.get("msg") for line in listener.lines]
        self.assertEqual(messages[-1], "stopped", messages)
        self.assertLess(messages.index("hook ran"), messages.index("stopped"))

    def test_poll_interval_catches_a_missed_webhook(self):
        r2 = cdn.generate_datafile(1234, 2, 1)
        with cdn.NginxCdn() as server:
            server.put("json/1234.json", DATAFILE_R1)
            with self.listen(server, "--poll-interval", "200ms") as listener:
                listener.post(SEED, sign(SEED))
                listener.wait_for_log(is_msg("hook ran"))
                server.put("json/1234.json", r2)
                listener.wait_for_log(lambda l: l.get("msg") == "datafile updated"
                                      and l.get("revision") == "2", timeout=20)
            self.assertEqual(self.stored(), r2)
            conditional = [r for r in server.requests() if r["if_none_match"]]
            self.assertTrue(conditional, server.requests())


if __name__ == "__main__":
    main()
