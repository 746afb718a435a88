#!/usr/bin/env bash
# verify-payload against a Python 3 baseline and openssl, in the same run. See RESULTS.md.
# Usage: bench/verify/run.sh [COUNT]   (DFHOOK: the dfhook binary, default build/release's)
set -euo pipefail
cd "$(dirname "$0")/../.."
dfhook=$(realpath "${DFHOOK:-build/release/apps/dfhook/dfhook}")
count=${1:-1000000}
secret=test-webhook-secret
bench=$(realpath bench/verify)
seed=$(realpath tests/fixtures/seed-payload.json)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"
printf '%s\n' "$secret" > keys.txt
/usr/bin/python3 "$bench/gen_envelopes.py" "$count" "$secret" > envelopes.jsonl
/usr/bin/python3 "$bench/gen_envelopes.py" 10000 "$secret" > envelopes-10k.jsonl
ls -l envelopes.jsonl
nproc; uptime

# The answers agree: every document valid, one line each.
"$dfhook" verify-payload --secret-file keys.txt < envelopes.jsonl | tail -1
/usr/bin/python3 "$bench/verify_baseline.py" "$secret" < envelopes.jsonl | tail -1

# Throughput: many envelopes on standard input, output to /dev/null.
hyperfine --runs 3 --warmup 1 --export-markdown many.md \
  -n "dfhook verify-payload" "$dfhook verify-payload --secret-file keys.txt < envelopes.jsonl > /dev/null" \
  -n "dfhook -q verify-payload" "$dfhook -q verify-payload --secret-file keys.txt < envelopes.jsonl" \
  -n "python3 baseline" "/usr/bin/python3 $bench/verify_baseline.py $secret < envelopes.jsonl > /dev/null"
cat many.md

# Peak memory: flat whatever the count.
for input in envelopes-10k.jsonl envelopes.jsonl; do
  /usr/bin/time -v "$dfhook" verify-payload --secret-file keys.txt < "$input" 2> time.txt \
    > /dev/null
  echo "$input: $(grep 'Maximum resident' time.txt)"
done

# One payload, one process: start-up and one HMAC.
hyperfine --runs 200 --warmup 20 -N --export-markdown one.md \
  -n "dfhook verify-payload --signature" \
  "$dfhook verify-payload --secret-file keys.txt --signature sha1=e8c4e277c194cf9e38f998e1334028645534b7b2 $seed" \
  -n "openssl dgst -sha1 -hmac" "openssl dgst -sha1 -hmac $secret $seed"
cat one.md
