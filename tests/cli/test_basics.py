"""The global behaviour every command shares: version, help, usage errors."""

import os
import subprocess
import unittest

from dfhook_test import DFHOOK, main, run


class Basics(unittest.TestCase):
    def test_version_prints_the_version(self):
        r = run("--version")
        self.assertEqual(r.code, 0, r)
        self.assertRegex(r.out, r"^dfhook \d+\.\d+\.\d+\n$")

    def test_help_lists_every_subcommand(self):
        r = run("--help")
        self.assertEqual(r.code, 0, r)
        for name in ("listen", "fetch-datafile", "verify-payload", "replay", "sign"):
            self.assertIn(name, r.out)

    def test_no_subcommand_is_a_usage_error(self):
        r = run()
        self.assertEqual(r.code, 2, r)
        self.assertTrue(r.err.startswith("dfhook: error: "), r)
        self.assertIn("hint: run 'dfhook --help' for usage", r.err)

    def test_a_subcommand_usage_error_points_at_its_own_help(self):
        for command in ("sign", "listen"):
            with self.subTest(command):
                r = run(command, "--no-such-option")
                self.assertEqual(r.code, 2, r)
                self.assertEqual(r.err, "dfhook: error: the following argument was not "
                                        "expected: --no-such-option\n"
                                        f"hint: run 'dfhook {command} --help' for usage\n")

    def test_numbers_out_of_range_say_the_range(self):
        cases = [(("listen", "--port", "65536"), "--port: must be a whole number from 0 to 65535"),
                 (("listen", "--max-connections", "0"),
                  "--max-connections: must be a whole number from 1 to 1000000"),
                 (("fetch-datafile", "--project-id", "-1"),
                  "--project-id: must be a whole number from 1 to 9223372036854775807"),
                 (("listen", "--retries", "1.5"), "--retries: must be a whole number from 0 to 100")]
        for args, message in cases:
            with self.subTest(args):
                r = run(*args)
                self.assertEqual(r.code, 2, r)
                self.assertEqual(r.err.splitlines()[0], "dfhook: error: " + message)

    def test_the_dev_script_parses_and_says_its_usage(self):
        script = os.path.join(os.environ["DFHOOK_SOURCE_DIR"], "dev")
        completed = subprocess.run(["bash", script], capture_output=True, timeout=30, check=False)
        self.assertEqual(completed.returncode, 2, completed)
        self.assertEqual(completed.stderr.decode(),
                         "usage: ./dev run [listen options...] | ./dev test | ./dev build\n")

    def test_unknown_option_is_a_usage_error_not_a_cli11_code(self):
        r = run("--no-such-option")
        self.assertEqual(r.code, 2, r)
        self.assertIn("dfhook: error: ", r.err)

    def test_dfhook_itself_never_loads_libcurl_or_libsystemd(self):
        # They cost milliseconds at every start; verify-payload and sign must stay as quick
        # as openssl. The network commands live in dfhook-net.
        libraries = subprocess.run(["ldd", DFHOOK], capture_output=True, check=True).stdout
        self.assertNotIn(b"libcurl", libraries)
        self.assertNotIn(b"libsystemd", libraries)


if __name__ == "__main__":
    main()
