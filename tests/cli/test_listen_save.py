"""listen --save-dir: every delivery that passed the signature check is written durably, as a
§6 envelope, before it is answered."""

import json
import os
import shutil
import tempfile
import unittest

from dfhook_test import main, read_fixture
from listener import SECRET, Listener, sign

SEED = read_fixture("seed-payload.json")
FLAG_UPDATED = b'{"project_id":1234,"timestamp":1,"event":"project.flag_updated","data":[]}'


class SaveDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="dfhook-save-")
        self.dir = self._tmp.name
        self.secrets = os.path.join(self.dir, "secrets")
        with open(self.secrets, "w") as f:
            f.write(SECRET + "\n")
        self.save_dir = os.path.join(self.dir, "deliveries")

    def tearDown(self):
        self._tmp.cleanup()

    def listen(self, *extra):
        # No CDN is reachable: the updates fail, which does not concern what is saved.
        return Listener(["--secret-file", self.secrets, "--out-dir",
                         os.path.join(self.dir, "out"), "--save-dir", self.save_dir,
                         "--poll-interval", "0", "--retries", "0",
                         "--connect-to", "cdn.optimizely.com:443:127.0.0.1:9", *extra])

    def saved(self):
        names = sorted(os.listdir(self.save_dir))
        documents = []
        for name in names:
            with open(os.path.join(self.save_dir, name), "rb") as f:
                documents.append((name, json.loads(f.read())))
        return documents

    def test_signed_deliveries_are_saved_in_order_with_their_exact_bytes(self):
        with self.listen() as listener:
            self.assertEqual(listener.post(SEED, sign(SEED))[0], 202)
            self.assertEqual(listener.post(FLAG_UPDATED, sign(FLAG_UPDATED))[0], 200)
            saved = self.saved()
        self.assertEqual(len(saved), 2)
        (first_name, first), (_, second) = saved
        self.assertRegex(first_name, r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}\.json$")
        self.assertEqual(first_name, f"{first_name[:23]}-{first['id']}.json")
        self.assertEqual(first["dfhook_envelope"], 1)
        self.assertEqual(first["method"], "POST")
        self.assertEqual(first["path"], "/webhooks/optimizely")
        self.assertEqual(first["body"].encode(), SEED)
        self.assertIn(["X-Hub-Signature", sign(SEED)], first["headers"])
        self.assertRegex(first["remote_addr"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(second["body"].encode(), FLAG_UPDATED)
        self.assertEqual(os.stat(self.save_dir).st_mode & 0o777, 0o700)

    def test_a_wrong_signature_is_not_saved_and_credentials_never_are(self):
        with self.listen() as listener:
            self.assertEqual(listener.post(SEED, sign(SEED, "wrong"))[0], 401)
            status, _ = listener.post(SEED, sign(SEED),
                                      headers={"Authorization": "Bearer do-not-keep",
                                               "Cookie": "session=do-not-keep"})
            self.assertEqual(status, 202)
            saved = self.saved()
        self.assertEqual(len(saved), 1)
        text = json.dumps(saved[0][1])
        self.assertNotIn("do-not-keep", text)

    def test_a_delivery_that_cannot_be_saved_is_answered_503_so_the_sender_retries(self):
        with self.listen() as listener:
            shutil.rmtree(self.save_dir)
            with open(self.save_dir, "w") as f:  # a file where the directory was
                f.write("x")
            status, answer = listener.post(SEED, sign(SEED))
            self.assertEqual(status, 503)
            self.assertEqual(answer["status"], "error")
            listener.wait_for_log(lambda l: l.get("msg") == "cannot save the delivery")

    def test_save_max_files_keeps_the_newest(self):
        with self.listen("--save-max-files", "2") as listener:
            for i in range(4):
                body = FLAG_UPDATED.replace(b'"timestamp":1', b'"timestamp":%d' % (i + 1))
                self.assertEqual(listener.post(body, sign(body))[0], 200)
            saved = self.saved()
        self.assertEqual([json.loads(doc["body"])["timestamp"] for _, doc in saved], [3, 4])


if __name__ == "__main__":
    main()
