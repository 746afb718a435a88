"""dfhook sign: the X-Hub-Signature of raw bytes, for curl tests."""

import os
import subprocess

from dfhook_test import DFHOOK, TempDirTestCase, fixture, main, read_fixture, run

SECRET = "test-webhook-secret"
SEED_SIGNATURE = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"
NO_SECRET_ERROR = ("dfhook: error: no secret to sign with\n"
                   "hint: give one with --secret-file FILE, DFHOOK_SECRET or --secret VALUE\n")


class Sign(TempDirTestCase):
    def test_signs_the_seed_payload_as_documented(self):
        keys = self.write("keys.txt", f"{SECRET}\n".encode())
        r = run("sign", fixture("seed-payload.json"), "--secret-file", keys)
        self.assertEqual((r.code, r.out, r.err), (0, SEED_SIGNATURE + "\n", ""), r)

    def test_signs_standard_input(self):
        r = run("sign", "--secret", SECRET, stdin=read_fixture("seed-payload.json"))
        self.assertEqual((r.code, r.out, r.err), (0, SEED_SIGNATURE + "\n", ""), r)
        r = run("sign", "-", "--secret", SECRET, stdin=read_fixture("seed-payload.json"))
        self.assertEqual((r.code, r.out), (0, SEED_SIGNATURE + "\n"), r)

    def test_signs_with_the_secret_from_the_environment(self):
        r = run("sign", fixture("payload-environment.json"), env={"DFHOOK_SECRET": SECRET})
        self.assertEqual((r.code, r.out), (0, "sha1=d28db150d48e41897f554652d04312fa64392a41\n"), r)

    def test_signs_with_the_first_secret_environment_first(self):
        keys = self.write("keys.txt", b"other-secret\n")
        r = run("sign", fixture("payload-decide-241.json"), "--secret-file", keys,
                "--secret", "second", env={"DFHOOK_SECRET": SECRET})
        self.assertEqual((r.code, r.out), (0, "sha1=1595eda848efc0f5a47978d4a7fdd6238fd17f3a\n"), r)
        r = run("sign", fixture("payload-decide-241.json"), "--secret-file", keys,
                "--secret", SECRET)
        self.assertEqual((r.code, r.out), (0, "sha1=1595eda848efc0f5a47978d4a7fdd6238fd17f3a\n"), r)

    def test_a_secret_file_with_crlf_lines_and_a_rotation(self):
        keys = self.write("keys.txt", f"\r\n{SECRET}\r\nold-secret\r\n".encode())
        r = run("sign", fixture("seed-payload.json"), "--secret-file", keys)
        self.assertEqual((r.code, r.out, r.err), (0, SEED_SIGNATURE + "\n", ""), r)

    def test_a_secret_bound_to_a_project_still_signs(self):
        keys = self.write("keys.txt", f"1234 {SECRET}\n".encode())
        r = run("sign", fixture("seed-payload.json"), "--secret-file", keys)
        self.assertEqual((r.code, r.out), (0, SEED_SIGNATURE + "\n"), r)

    def test_signs_the_raw_bytes_of_an_empty_body(self):
        empty = self.write("empty", b"")
        r = run("sign", empty, "--secret", SECRET)
        self.assertEqual((r.code, r.out), (0, "sha1=2235dde5ff3e4dc704a66dd6b4620a2eeef5fbce\n"), r)

    def test_no_secret_is_a_usage_error_with_a_hint(self):
        r = run("sign", fixture("seed-payload.json"))
        self.assertEqual((r.code, r.out, r.err), (2, "", NO_SECRET_ERROR), r)

    def test_no_secret_does_not_wait_for_standard_input(self):
        # Standard input stays open and empty: sign must fail before reading it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
        with subprocess.Popen([DFHOOK, "sign"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env) as proc:
            try:
                code = proc.wait(timeout=10)
                out, err = proc.stdout.read(), proc.stderr.read()
            finally:
                proc.kill()
                proc.stdin.close()
        self.assertEqual((code, out, err.decode()), (2, b"", NO_SECRET_ERROR))

    def test_the_file_may_follow_the_secret_options(self):
        r = run("sign", "--secret", SECRET, fixture("seed-payload.json"))
        self.assertEqual((r.code, r.out, r.err), (0, SEED_SIGNATURE + "\n", ""), r)
        keys = self.write("k", SECRET.encode())
        r = run("sign", "--secret-file", keys, "--", fixture("seed-payload.json"))
        self.assertEqual((r.code, r.out, r.err), (0, SEED_SIGNATURE + "\n", ""), r)

    def test_an_empty_secret_is_a_usage_error(self):
        r = run("sign", fixture("seed-payload.json"), "--secret", "")
        self.assertEqual((r.code, r.out, r.err),
                         (2, "", "dfhook: error: empty secret from --secret\n"
                          "hint: give the webhook's secret as shown in Optimizely's settings\n"), r)
        r = run("sign", fixture("seed-payload.json"), env={"DFHOOK_SECRET": ""})
        self.assertEqual(r.code, 2, r)
        self.assertTrue(r.err.startswith("dfhook: error: empty secret from DFHOOK_SECRET\n"), r)

    def test_a_secret_file_without_a_secret_is_a_usage_error(self):
        keys = self.write("keys.txt", b"\r\n\n")
        r = run("sign", fixture("seed-payload.json"), "--secret-file", keys)
        self.assertEqual(r.code, 2, r)
        self.assertTrue(r.err.startswith(f"dfhook: error: '{keys}' holds no secret\n"), r)
        self.assertEqual(r.out, "")

    def test_an_unreadable_body_is_a_usage_error(self):
        missing = os.path.join(self.dir, "missing.json")
        r = run("sign", missing, "--secret", SECRET)
        self.assertEqual((r.code, r.out, r.err), (2, "", f"dfhook: error: cannot read "
                                                  f"'{missing}': No such file or directory\n"), r)

    def test_an_unreadable_secret_file_is_a_usage_error(self):
        missing = os.path.join(self.dir, "keys.txt")
        r = run("sign", fixture("seed-payload.json"), "--secret-file", missing)
        self.assertEqual((r.code, r.out, r.err), (2, "", f"dfhook: error: cannot read "
                                                  f"'{missing}': No such file or directory\n"), r)

    def test_the_secret_never_appears_in_an_error(self):
        keys = self.write("keys.txt", b"0 hidden-secret-value\n")
        r = run("sign", fixture("seed-payload.json"), "--secret-file", keys)
        self.assertEqual(r.code, 2, r)
        self.assertNotIn("hidden-secret-value", r.err + r.out)
        self.assertTrue(r.err.startswith(
            f"dfhook: error: '{keys}':1: project id '0' is out of range"), r)

    def test_a_second_file_argument_is_a_usage_error(self):
        body = fixture("seed-payload.json")
        r = run("sign", body, body, "--secret", SECRET)
        self.assertEqual((r.code, r.out), (2, ""), r)
        self.assertTrue(r.err.startswith("dfhook: error: "), r)


if __name__ == "__main__":
    main()
