"""The bash completion file, loaded in a real bash."""

import os
import subprocess
import unittest

from dfhook_test import DFHOOK, main

COMPLETION = os.path.join(os.environ["DFHOOK_SOURCE_DIR"], "completions", "dfhook.bash")


def complete(*words):
    """The completions bash offers for the command line `words` (the last one is completed)."""
    words_array = " ".join(f"'{w}'" for w in words)
    script = (f"source '{COMPLETION}'; COMP_WORDS=({words_array}); "
              f"COMP_CWORD={len(words) - 1}; _dfhook; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    env = dict(os.environ, PATH=os.path.dirname(DFHOOK) + os.pathsep + os.environ["PATH"])
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, env=env,
                         check=True, timeout=30).stdout.decode()
    return sorted(line for line in out.splitlines() if line)


class Completions(unittest.TestCase):
    def test_registers_for_dfhook(self):
        out = subprocess.run(["bash", "--norc", "-c", f"source '{COMPLETION}'; complete -p dfhook"],
                             capture_output=True, check=True).stdout.decode()
        self.assertIn("-F _dfhook dfhook", out)

    def test_completes_every_subcommand(self):
        self.assertEqual(complete("dfhook", ""),
                         ["fetch-datafile", "listen", "replay", "sign", "verify-payload"])
        self.assertEqual(complete("dfhook", "ver"), ["verify-payload"])

    def test_completes_global_options(self):
        self.assertIn("--log-format", complete("dfhook", "--"))
        self.assertEqual(complete("dfhook", "--log-format", ""), ["json", "text"])

    def test_completes_the_options_of_each_subcommand_from_its_help(self):
        for sub in ("listen", "fetch-datafile", "verify-payload", "replay", "sign"):
            help_text = subprocess.run([DFHOOK, sub, "--help"], capture_output=True,
                                       check=False).stdout.decode()
            offered = complete("dfhook", sub, "--")
            self.assertIn("--help", offered, sub)
            for option in ("--secret-file", "--timeout", "--out-dir", "--format"):
                if f"{option} " in help_text or f"{option}\n" in help_text:
                    self.assertIn(option, offered, f"{sub}: {option}")


if __name__ == "__main__":
    main()
