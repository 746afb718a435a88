"""Writes N signed delivery envelopes (DESIGN §6), one per line, to standard output.

Usage: gen_envelopes.py N SECRET
Each body is a project.datafile_updated payload with its own revision, signed as Optimizely signs
(HMAC-SHA1 of the raw body bytes) in the envelope's X-Hub-Signature header.
"""

import hashlib
import hmac
import json
import sys


def main():
    count, secret = int(sys.argv[1]), sys.argv[2].encode()
    out = sys.stdout.buffer
    lines = []
    for i in range(count):
        body = ('{"project_id":10847551550,"timestamp":%d,"event":"project.datafile_updated",'
                '"data":{"revision":%d,"origin_url":"https://optimizely.s3.amazonaws.com/'
                'datafiles/TestSdkKey123.json","cdn_url":"https://cdn.optimizely.com/datafiles/'
                'TestSdkKey123.json","environment":"Production"}}' % (1764756000 + i, i + 1))
        signature = "sha1=" + hmac.new(secret, body.encode(), hashlib.sha1).hexdigest()
        envelope = {
            "dfhook_envelope": 1, "id": "%016x" % i,
            "received_at": "2025-12-03T10:00:00.%06dZ" % (i % 1000000),
            "remote_addr": "192.0.2.7:43210", "method": "POST", "path": "/webhooks/optimizely",
            "headers": [["Host", "hooks.example.com"], ["User-Agent", "Optimizely"],
                        ["Content-Type", "application/json"], ["X-Hub-Signature", signature]],
            "body": body}
        lines.append(json.dumps(envelope, separators=(",", ":")))
        if len(lines) == 10000:
            out.write(("\n".join(lines) + "\n").encode())
            lines.clear()
    if lines:
        out.write(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
