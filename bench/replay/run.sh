#!/usr/bin/env bash
# Replay throughput: `dfhook replay --concurrency 16` against `xargs -P 16 curl`, both sending
# the same 10,000 saved payloads to one local `dfhook listen` on loopback, in the same run.
# Needs a build (default build/release; BUILD=build/other to choose) and hyperfine.
# Usage: bench/replay/run.sh [COUNT] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build/release}
count=${1:-10000}
runs=${2:-3}
dfhook="$PWD/$build/apps/dfhook/dfhook"
[ -x "$dfhook" ] || { echo "no $dfhook: build first" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

work=$(mktemp -d)
listener=""
cleanup() {
  if [ -n "$listener" ]; then
    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# project.flag_updated deliveries: the listener acknowledges them (200 "ignored") without any
# download, so what is measured is the sending and the HTTP exchange.
mkdir "$work/deliveries"
python3 - "$work/deliveries" "$count" <<'EOF'
import json, sys
directory, count = sys.argv[1], int(sys.argv[2])
for n in range(count):
    body = {"project_id": 1234, "timestamp": 1468447113 + n, "event": "project.flag_updated",
            "data": [{"flag": f"flag_{n}", "url": "https://cdn.optimizely.com/json/1234.json"}]}
    with open(f"{directory}/{n:06d}.json", "w") as f:
        f.write(json.dumps(body, separators=(",", ":")))
EOF

"$dfhook" listen --port 0 --insecure-skip-signature --out-dir "$work/out" --poll-interval 0 \
  --log-format json 2> "$work/listen.log" &
listener=$!
# The ready line carries the port; bounded wait (10 s).
port=""
for _ in $(seq 200); do
  port=$(sed -n 's/.*"msg":"listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/listen.log")
  [ -n "$port" ] && break
  kill -0 "$listener" 2>/dev/null || { cat "$work/listen.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "listen did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/webhooks/optimizely"

cat > "$work/curl.sh" <<EOF
#!/usr/bin/env bash
# One curl per delivery, 16 at a time; every answer must be a 2xx.
set -euo pipefail
cd "$work/deliveries"
ls | sort | xargs -P 16 -I{} curl -sS -o /dev/null -w '%{http_code}\n' \\
  -H 'Content-Type: application/json' --data-binary @{} "$url" > "$work/curl.codes"
test "\$(grep -c '^2' "$work/curl.codes")" -eq $count
EOF
chmod +x "$work/curl.sh"

echo "deliveries: $count, receiver: $url, runs: $runs"
hyperfine --runs "$runs" --warmup 1 --export-markdown "$work/results.md" \
  -n "dfhook replay --concurrency 16" \
  "'$dfhook' replay -q --to '$url' --concurrency 16 '$work/deliveries'" \
  -n "xargs -P 16 curl" \
  "'$work/curl.sh'"
cat "$work/results.md"
