"""listen under systemd: readiness and stopping notifications (sd_notify) and socket
activation (LISTEN_FDS), as systemd provides them, without systemd."""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import unittest

from dfhook_test import DFHOOK, main


class ListenUnderSystemd(unittest.TestCase):
    def test_notifies_ready_and_stopping_and_serves_the_inherited_socket(self):
        with tempfile.TemporaryDirectory(prefix="dfhook-systemd-") as tmp:
            notify_path = os.path.join(tmp, "notify")
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(notify_path)
            notify.settimeout(30)
            inherited = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            inherited.bind(("127.0.0.1", 0))
            inherited.listen(16)
            port = inherited.getsockname()[1]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DFHOOK_", "LISTEN_"))}
            env.update({"NOTIFY_SOCKET": notify_path, "DFHOOK_SECRET": "test-webhook-secret"})
            # The shell puts the socket at fd 3 and sets LISTEN_PID to its own pid, which exec
            # hands to dfhook (and dfhook to dfhook-net), as systemd does.
            script = (f'exec 3<&{inherited.fileno()}; LISTEN_PID=$$ LISTEN_FDS=1 '
                      f'exec "{DFHOOK}" listen --log-format json --out-dir "{tmp}/out"')
            process = subprocess.Popen(["/bin/sh", "-c", script], pass_fds=(inherited.fileno(),),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, env=env)
            try:
                inherited.close()
                ready = notify.recv(4096).decode()
                self.assertIn("READY=1", ready.split("\n"))
                line = json.loads(process.stderr.readline())
                self.assertEqual(line["msg"], f"listening on 127.0.0.1:{port}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                self.assertEqual(response.status, 200)
                self.assertEqual(json.loads(response.read()), {"status": "ok", "datafiles": []})
                conn.close()
                process.send_signal(signal.SIGTERM)
                stopping = notify.recv(4096).decode()
                self.assertIn("STOPPING=1", stopping.split("\n"))
                self.assertEqual(process.wait(timeout=30), 0)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                process.stderr.close()
                notify.close()


if __name__ == "__main__":
    main()
