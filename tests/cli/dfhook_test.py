"""Helpers for the CLI tests: run the real binary, read fixtures, start local servers."""

import os
import subprocess
import tempfile
import unittest

DFHOOK = os.environ["DFHOOK_BIN"]
FIXTURES = os.environ["DFHOOK_FIXTURES"]


def fixture(name):
    return os.path.join(FIXTURES, name)


def read_fixture(name):
    with open(fixture(name), "rb") as f:
        return f.read()


class Result:
    def __init__(self, completed):
        self.code = completed.returncode
        self.out = completed.stdout.decode("utf-8", "replace")
        self.err = completed.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def run(*args, stdin=b"", env=None, timeout=60):
    """Runs dfhook with args; returns Result(code, out, err)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DFHOOK_")}
    full_env["DFHOOK_BIN"] = DFHOOK
    if env:
        full_env.update(env)
    completed = subprocess.run([DFHOOK, *args], input=stdin, capture_output=True,
                               env=full_env, timeout=timeout, check=False)
    return Result(completed)


class TempDirTestCase(unittest.TestCase):
    """A test case with a fresh temporary directory, self.dir, removed after each test."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="dfhook-test-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def write(self, name, content):
        """Writes bytes to DIR/name (creating its folders); returns the path."""
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        return path


def main():
    unittest.main(verbosity=2)
