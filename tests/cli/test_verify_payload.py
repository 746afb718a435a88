"""dfhook verify-payload: saved payloads and envelopes, their rules and signatures."""

import hashlib
import hmac
import json
import os
import select
import subprocess

from dfhook_test import DFHOOK, TempDirTestCase, fixture, main, read_fixture, run

SECRET = "test-webhook-secret"
SEED = read_fixture("seed-payload.json")
SEED_SIGNATURE = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"
SEED_OK = "ok project=1234 revision=1"


def sign(body, secret=SECRET):
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def envelope(body, signatures=None, secret=SECRET, ascii_only=True):
    """A §6 envelope of `body` (bytes); signed with `secret` unless `signatures` is given."""
    if signatures is None:
        signatures = [sign(body, secret)]
    headers = [["Content-Type", "application/json"]]
    headers += [["X-Hub-Signature", value] for value in signatures]
    return json.dumps({
        "dfhook_envelope": 1, "id": "0123456789abcdef",
        "received_at": "2025-12-03T10:00:00.123456Z", "remote_addr": "192.0.2.7:43210",
        "method": "POST", "path": "/webhooks/optimizely", "headers": headers,
        "body": body.decode("utf-8")}, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def seed_with(old, new):
    assert old in SEED
    return SEED.replace(old, new, 1)


class VerifyPayload(TempDirTestCase):
    def keys(self, text=SECRET):
        return self.write("keys.txt", (text + "\n").encode())

    def assertRun(self, r, code, out, err=""):
        self.assertEqual((r.code, r.out, r.err), (code, out, err), r)

    # Inputs

    def test_a_bare_payload_without_a_secret_is_ok_unchecked(self):
        path = fixture("seed-payload.json")
        r = run("verify-payload", path)
        self.assertRun(r, 0, f"{path}:1:1: document 1: {SEED_OK} signature=unchecked\n")

    def test_standard_input_when_no_file_or_dash_is_given(self):
        for args in ([], ["-"]):
            r = run("verify-payload", *args, stdin=SEED)
            self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=unchecked\n")

    def test_many_documents_concatenated_or_one_per_line(self):
        other = read_fixture("payload-environment.json")
        r = run("verify-payload", stdin=SEED + other + b"\n\n" + SEED + b"\n")
        self.assertRun(r, 0,
                       f"-:1:1: document 1: {SEED_OK} signature=unchecked\n"
                       f"-:1:{len(SEED) + 1}: document 2: ok project=10847551550 revision=87 "
                       "signature=unchecked\n"
                       f"-:3:1: document 3: {SEED_OK} signature=unchecked\n")

    def test_an_input_without_a_document_is_invalid(self):
        r = run("verify-payload", stdin=b"\n  \n")
        self.assertRun(r, 1, "-:1:1: invalid: no document\n")

    # Signatures

    def test_signed_envelopes_verify_with_every_secret_source(self):
        stream = envelope(SEED) + b"\n" + envelope(SEED) + b"\n"
        expected = (f"-:1:1: document 1: {SEED_OK} signature=valid\n"
                    f"-:2:1: document 2: {SEED_OK} signature=valid\n")
        self.assertRun(run("verify-payload", "--secret-file", self.keys(), stdin=stream), 0,
                       expected)
        self.assertRun(run("verify-payload", stdin=stream, env={"DFHOOK_SECRET": SECRET}), 0,
                       expected)
        self.assertRun(run("verify-payload", "--secret", SECRET, stdin=stream), 0, expected)
        rotated = self.keys(f"new-secret\n{SECRET}")
        self.assertRun(run("verify-payload", "--secret-file", rotated, stdin=stream), 0, expected)

    def test_signatures_cover_the_raw_body_bytes(self):
        escaped = seed_with(b"https://cdn.optimizely.com/json/1234.json",
                            rb"https:\/\/cdn.optimizely.com\/json\/1234.json")
        pretty = json.dumps(json.loads(SEED), indent=2).encode() + b"\n"
        unicode = seed_with(b'"event"',
                            '"note":"h\u00e9llo \U0001F600 \u2028","event"'.encode())
        stream = b"".join(envelope(body, ascii_only=ascii_only) + b"\n"
                          for body in (escaped, pretty, unicode)
                          for ascii_only in (True, False))
        r = run("verify-payload", "--secret", SECRET, stdin=stream)
        self.assertEqual(r.code, 0, r)
        self.assertEqual([line.split(": ", 2)[2] for line in r.out.splitlines()],
                         [f"{SEED_OK} signature=valid"] * 6, r)

    def test_signature_of_a_single_bare_payload(self):
        path = fixture("seed-payload.json")
        r = run("verify-payload", path, "--secret", SECRET, "--signature", SEED_SIGNATURE)
        self.assertRun(r, 0, f"{path}:1:1: document 1: {SEED_OK} signature=valid\n")
        # The signature covers the file's bytes, final newline included.
        pretty = json.dumps(json.loads(SEED), indent=2).encode() + b"\n"
        path = self.write("pretty.json", pretty)
        r = run("verify-payload", path, "--secret", SECRET, "--signature", sign(pretty))
        self.assertRun(r, 0, f"{path}:1:1: document 1: {SEED_OK} signature=valid\n")

    def test_uppercase_hex_and_surrounding_whitespace_verify(self):
        for value in (SEED_SIGNATURE.upper(), f" \t{SEED_SIGNATURE}  "):
            r = run("verify-payload", "--secret", SECRET, "--signature", value, stdin=SEED)
            self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=valid\n")
            r = run("verify-payload", "--secret", SECRET, stdin=envelope(SEED, [value]))
            self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=valid\n")

    def test_malformed_signatures_fail_cleanly(self):
        digits = SEED_SIGNATURE[5:]
        for value in (digits, "sha256=" + digits, "sha1=" + digits[1:], "sha1=" + digits[1:] + "g"):
            saved = envelope(SEED, [value])
            column = saved.index(value.encode()) - 1 + 1
            r = run("verify-payload", "--secret", SECRET, stdin=saved)
            self.assertRun(r, 1, f"-:1:{column}: document 1: invalid: /headers/1/1: "
                           f"X-Hub-Signature '{value}' is not 'sha1=' and 40 hex digits\n")
            r = run("verify-payload", "--secret", SECRET, "--signature", value, stdin=SEED)
            self.assertRun(r, 1, "-:1:1: document 1: invalid: "
                           f"--signature '{value}' is not 'sha1=' and 40 hex digits\n")

    def test_a_wrong_signature_is_invalid_and_no_digest_is_printed(self):
        r = run("verify-payload", "--secret", "another-secret", stdin=envelope(SEED))
        self.assertEqual(r.code, 1, r)
        self.assertTrue(r.out.endswith(
            ": document 1: invalid: /headers/1/1: the signature does not match any secret\n"), r)
        computed = sign(SEED, "another-secret")[5:]
        r = run("verify-payload", "--secret", "another-secret", "--format", "json",
                stdin=envelope(SEED))
        self.assertNotIn(computed, r.out + r.err)
        r = run("verify-payload", "--secret", "another-secret", "--signature", SEED_SIGNATURE,
                stdin=SEED)
        self.assertRun(r, 1, "-:1:1: document 1: invalid: --signature does not match any secret\n")
        self.assertNotIn(computed, r.out + r.err)

    def test_repeated_identical_headers_are_one_differing_ones_fail(self):
        r = run("verify-payload", "--secret", SECRET,
                stdin=envelope(SEED, [SEED_SIGNATURE, SEED_SIGNATURE.upper()]))
        self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=valid\n")
        r = run("verify-payload", "--secret", SECRET,
                stdin=envelope(SEED, [SEED_SIGNATURE, sign(SEED, "other")]))
        self.assertEqual(r.code, 1, r)
        self.assertIn(": document 1: invalid: /headers/2/1: X-Hub-Signature headers with "
                      "different values\n", r.out)

    def test_a_secret_with_nothing_to_check_it_against_is_invalid(self):
        r = run("verify-payload", "--secret", SECRET, stdin=SEED)
        self.assertRun(r, 1, "-:1:1: document 1: invalid: no signature to check the secret "
                       "against: give --signature, or check the saved envelope\n")
        saved = envelope(SEED, [])
        r = run("verify-payload", "--secret", SECRET, stdin=saved)
        column = saved.index(b'"headers"') + len(b'"headers":') + 1
        self.assertRun(r, 1, f"-:1:{column}: document 1: invalid: /headers: no X-Hub-Signature "
                       "header to check the secret against\n")

    def test_without_a_secret_an_envelope_signature_is_unchecked(self):
        r = run("verify-payload", stdin=envelope(SEED, ["garbage"]))
        self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=unchecked\n")

    def test_a_secret_bound_to_another_project_is_invalid(self):
        saved = envelope(SEED)
        column = saved.index(b":1234,") + 2
        r = run("verify-payload", "--secret-file", self.keys(f"99 {SECRET}"), stdin=saved)
        self.assertEqual(r.code, 1, r)
        keys = os.path.join(self.dir, "keys.txt")
        self.assertEqual(r.out, f"-:1:{column}: document 1: invalid: /project_id: signed with "
                         f"the secret from '{keys}':1, which is bound to another project\n")
        self.assertNotIn(SECRET, r.out + r.err)
        r = run("verify-payload", "--secret-file", self.keys(f"1234 {SECRET}"), stdin=saved)
        self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=valid\n")

    # Usage errors

    def test_an_empty_secret_is_a_usage_error(self):
        r = run("verify-payload", fixture("seed-payload.json"), "--secret", "")
        self.assertRun(r, 2, "", "dfhook: error: empty secret from --secret\n"
                       "hint: give the webhook's secret as shown in Optimizely's settings\n")
        r = run("verify-payload", env={"DFHOOK_SECRET": ""}, stdin=SEED)
        self.assertRun(r, 2, "", "dfhook: error: empty secret from DFHOOK_SECRET\n"
                       "hint: give the webhook's secret as shown in Optimizely's settings\n")

    def test_signature_with_several_documents_is_a_usage_error(self):
        r = run("verify-payload", "--secret", SECRET, "--signature", SEED_SIGNATURE,
                stdin=SEED + b"\n" + SEED)
        self.assertRun(r, 2, "", "dfhook: error: --signature: standard input holds 2 documents, "
                       "--signature belongs to one\nhint: verify saved envelopes, which carry "
                       "their own signature, or one payload at a time\n")
        path = fixture("seed-payload.json")
        r = run("verify-payload", path, path, "--secret", SECRET, "--signature", SEED_SIGNATURE)
        self.assertRun(r, 2, "", "dfhook: error: --signature belongs to one document, and "
                       "several inputs are given\nhint: verify one payload at a time\n")

    def test_signature_without_a_secret_is_a_usage_error(self):
        r = run("verify-payload", "--signature", SEED_SIGNATURE, stdin=SEED)
        self.assertRun(r, 2, "", "dfhook: error: --signature needs a secret to check it with\n"
                       "hint: give one with --secret-file FILE, DFHOOK_SECRET or --secret VALUE\n")

    def test_bad_option_values_are_usage_errors(self):
        r = run("verify-payload", "--max-age", "5x", stdin=SEED)
        self.assertEqual((r.code, r.out), (2, ""), r)
        self.assertTrue(r.err.startswith("dfhook: error: --max-age: invalid duration '5x'"), r)
        r = run("verify-payload", "--project-id", "0", stdin=SEED)
        self.assertRun(r, 2, "", "dfhook: error: --project-id: must be a whole number from 1 to "
                       "9223372036854775807\nhint: run 'dfhook verify-payload --help' for usage\n")
        r = run("verify-payload", "--format", "yaml", stdin=SEED)
        self.assertEqual((r.code, r.out), (2, ""), r)

    # The payload rules

    def test_each_fault_is_rejected_with_the_fields_pointer(self):
        # (body, the bytes at the problem's position, problem)
        cases = [
            (seed_with(b'"event"', b'"ev\xffnt"'), b"\xff", "invalid UTF-8"),
            (seed_with(b'"timestamp"', b'"timestamp":1,"timestamp"'), b'"timestamp":1468',
             "/timestamp: duplicate member name 'timestamp'"),
            (seed_with(b'"revision":1', b'"revision":NaN'), b"NaN",
             "/data/revision: NaN and Infinity are not JSON numbers"),
            (seed_with(b'"revision":1', b'"revision":18446744073709551617'), b"18446",
             "/data/revision: integer '18446744073709551617' does not fit in 64 bits"),
            (seed_with(b'"revision":1', b'"revision":"1"'), b'"1"',
             "/data/revision: expected an integer, found a string"),
            (seed_with(b'"revision":1,', b""), b'{"origin_url',
             "/data/revision: missing required field"),
            (seed_with(b'"project_id":1234', b'"project_id":"1234"'), b'"1234"',
             "/project_id: expected an integer, found a string"),
            (seed_with(b'"event":"project.datafile_updated",', b""), b'{"project_id',
             "/event: missing required field"),
            (seed_with(b'"https://cdn', b'"cdn'), b'"cdn.',
             "/data/cdn_url: expected an absolute URL, found 'cdn.optimizely.com/json/1234.json'"),
            (seed_with(b'"revision":1', b'"revision":1,"x":' + b"[" * 65 + b"]" * 65),
             b"[" * 3 + b"]",  # the 63rd array, at depth 65
             "/data/x/" + "0/" * 61 + "0: nesting deeper than 64 levels"),
        ]
        for body, marker, problem in cases:
            with self.subTest(problem=problem):
                r = run("verify-payload", stdin=body)
                column = body.index(marker) + 1
                self.assertRun(r, 1, f"-:1:{column}: document 1: invalid: {problem}\n")

    def test_trailing_bytes_after_a_body_are_rejected(self):
        saved = envelope(SEED + b" x", [])
        column = saved.index(b' x"') + 2
        r = run("verify-payload", stdin=saved)
        self.assertRun(r, 1, f"-:1:{column}: document 1: invalid: unexpected data after the "
                       "document\n")

    def test_a_problem_in_an_envelope_body_is_located_in_the_envelope_file(self):
        saved = b"\n" + envelope(seed_with(b'"revision":1', b'"revision":"1"'), [])
        path = self.write("saved.json", saved)
        column = saved.split(b"\n")[1].index(rb'\"1\"') + 1
        r = run("verify-payload", path)
        self.assertRun(r, 1, f"{path}:2:{column}: document 1: invalid: /data/revision: expected "
                       "an integer, found a string\n")

    def test_a_project_id_above_2_to_the_31_is_fine(self):
        r = run("verify-payload", stdin=seed_with(b"1234,", b"10847551550,"))
        self.assertRun(r, 0, "-:1:1: document 1: ok project=10847551550 revision=1 "
                       "signature=unchecked\n")

    def test_another_event_with_array_data_is_ignored(self):
        body = (b'{"project_id":1234,"timestamp":1468447113,"event":"project.flag_updated",'
                b'"data":[{"id":1}]}')
        r = run("verify-payload", stdin=body)
        self.assertRun(r, 0, '-:1:1: document 1: ok (ignored event "project.flag_updated")\n')
        r = run("verify-payload", "--secret", SECRET, stdin=envelope(body))
        self.assertRun(r, 0, '-:1:1: document 1: ok (ignored event "project.flag_updated")\n')

    def test_one_bad_document_in_a_stream_is_reported_and_the_rest_checked(self):
        bad = seed_with(b'"revision":1', b'"revision":"1"')
        path = self.write("deliveries.jsonl", b"\n".join(
            [envelope(SEED), envelope(SEED), envelope(bad), envelope(SEED)]) + b"\n")
        column = envelope(bad).index(rb'\"1\"') + 1
        r = run("verify-payload", "--secret", SECRET, path)
        self.assertRun(r, 1,
                       f"{path}:1:1: document 1: {SEED_OK} signature=valid\n"
                       f"{path}:2:1: document 2: {SEED_OK} signature=valid\n"
                       f"{path}:3:{column}: document 3: invalid: /data/revision: expected an "
                       "integer, found a string\n"
                       f"{path}:4:1: document 4: {SEED_OK} signature=valid\n")

    def test_reading_resumes_after_a_syntax_error_at_the_next_line_with_a_brace(self):
        r = run("verify-payload", stdin=SEED + b"\n" + b'{"project_id": 12,\n  oops\n' + SEED)
        self.assertRun(r, 1,
                       f"-:1:1: document 1: {SEED_OK} signature=unchecked\n"
                       "-:3:3: document 2: invalid: expected a member name in double quotes\n"
                       f"-:4:1: document 3: {SEED_OK} signature=unchecked\n")

    def test_an_unreadable_file_is_exit_2_and_the_others_are_checked(self):
        missing = os.path.join(self.dir, "missing.json")
        path = fixture("seed-payload.json")
        bad = self.write("bad.json", seed_with(b'"revision":1', b'"revision":0'))
        r = run("verify-payload", path, missing, bad, self.dir)
        self.assertEqual(r.code, 2, r)
        self.assertEqual(r.out, f"{path}:1:1: document 1: {SEED_OK} signature=unchecked\n"
                         f"{bad}:1:97: document 1: invalid: /data/revision: must be between 1 and "
                         "18446744073709551615, found 0\n")
        self.assertEqual(r.err, f"dfhook: error: cannot read '{missing}': No such file or "
                         "directory\n"
                         f"dfhook: error: cannot read '{self.dir}': Is a directory\n")

    # Filters

    def test_project_id_and_max_age(self):
        r = run("verify-payload", "--project-id", "99", "--project-id", "1234", stdin=SEED)
        self.assertRun(r, 0, f"-:1:1: document 1: {SEED_OK} signature=unchecked\n")
        r = run("verify-payload", "--project-id", "99", stdin=SEED)
        self.assertRun(r, 1, "-:1:15: document 1: invalid: /project_id: project 1234 is not one "
                       "of --project-id\n")
        r = run("verify-payload", "--max-age", "5m", stdin=SEED)
        self.assertRun(r, 1, "-:1:32: document 1: invalid: /timestamp: sent 2016-07-13T21:58:33Z, "
                       "more than --max-age 5m ago\n")
        r = run("verify-payload", "--max-age", "0", stdin=SEED)
        self.assertEqual(r.code, 0, r)

    # Output

    def test_json_output_has_one_object_per_document(self):
        bad = seed_with(b'"revision":1', b'"revision":"1"')
        ignored = b'{"project_id":5,"timestamp":1,"event":"project.flag_updated","data":[]}'
        r = run("verify-payload", "--format", "json", "--secret", SECRET,
                stdin=envelope(SEED) + b"\n" + envelope(ignored) + b"\n" + envelope(bad))
        self.assertEqual(r.code, 1, r)
        lines = [json.loads(line) for line in r.out.splitlines()]
        self.assertEqual(lines[0], {
            "file": "-", "document": 1, "line": 1, "column": 1, "status": "ok",
            "event": "project.datafile_updated", "project_id": 1234, "revision": 1,
            "signature": "valid", "pointer": None, "reason": None})
        self.assertEqual(lines[1], {
            "file": "-", "document": 2, "line": 2, "column": 1, "status": "ignored",
            "event": "project.flag_updated", "project_id": 5, "revision": None,
            "signature": "valid", "pointer": None,
            "reason": "event 'project.flag_updated' is not handled"})
        self.assertEqual(lines[2], {
            "file": "-", "document": 3, "line": 3, "column": envelope(bad).index(rb'\"1\"') + 1,
            "status": "invalid", "event": None, "project_id": None, "revision": None,
            "signature": "unchecked", "pointer": "/data/revision",
            "reason": "expected an integer, found a string"})
        self.assertEqual(len(lines), 3)

    def test_quiet_prints_nothing_and_keeps_the_exit_code(self):
        self.assertRun(run("-q", "verify-payload", stdin=SEED), 0, "")
        self.assertRun(run("verify-payload", "-q", stdin=SEED + b"{"), 1, "")
        self.assertRun(run("verify-payload", "--quiet", "--secret", SECRET, stdin=SEED), 1, "")

    def test_many_documents_stream_in_order(self):
        count = 20000
        stream = b"".join(envelope(seed_with(b'"revision":1', f'"revision":{i}'.encode())) + b"\n"
                          for i in range(1, count + 1))
        r = run("verify-payload", "--secret", SECRET, stdin=stream)
        self.assertEqual((r.code, r.err), (0, ""), r)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), count)
        for i in (0, 1, 4095, count - 1):
            self.assertEqual(lines[i], f"-:{i + 1}:1: document {i + 1}: ok project=1234 "
                             f"revision={i + 1} signature=valid")


    def test_a_document_on_a_pipe_is_answered_before_the_input_ends(self):
        # A slow writer (a terminal, a pipe): each completed document is judged at once, not
        # when a batch fills or the input ends.
        with subprocess.Popen([DFHOOK, "verify-payload", "--secret", SECRET],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              env={k: v for k, v in os.environ.items()
                                   if not k.startswith("DFHOOK_")}) as process:
            try:
                for i in (1, 2):
                    process.stdin.write(envelope(seed_with(b'"revision":1',
                                                           f'"revision":{i}'.encode())) + b"\n")
                    process.stdin.flush()
                    ready, _, _ = select.select([process.stdout], [], [], 30)
                    self.assertTrue(ready, f"no answer to document {i} while stdin is open")
                    self.assertEqual(process.stdout.readline().decode(),
                                     f"-:{i}:1: document {i}: ok project=1234 revision={i} "
                                     "signature=valid\n")
            finally:
                process.stdin.close()
                process.wait(timeout=30)
            self.assertEqual((process.returncode, process.stdout.read(), process.stderr.read()),
                             (0, b"", b""))

if __name__ == "__main__":
    main()
