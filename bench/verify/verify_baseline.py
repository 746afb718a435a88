"""The baseline verify-payload is compared with: per document, json.loads of the envelope and of
its body, and hmac.compare_digest of the X-Hub-Signature; one line of output per document.

Usage: verify_baseline.py SECRET < envelopes.jsonl
"""

import hashlib
import hmac
import json
import sys


def main():
    secret = sys.argv[1].encode()
    out = sys.stdout
    invalid = 0
    for number, line in enumerate(sys.stdin.buffer, 1):
        envelope = json.loads(line)
        body = envelope["body"]
        payload = json.loads(body)
        signature = next(value for name, value in envelope["headers"]
                         if name.lower() == "x-hub-signature")
        expected = "sha1=" + hmac.new(secret, body.encode(), hashlib.sha1).hexdigest()
        if hmac.compare_digest(signature.strip().lower(), expected):
            out.write("-:%d:1: document %d: ok project=%d revision=%d signature=valid\n"
                      % (number, number, payload["project_id"], payload["data"]["revision"]))
        else:
            invalid += 1
            out.write("-:%d:1: document %d: invalid\n" % (number, number))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
