#!/usr/bin/env bash
# dfhook listen under load, side by side with adnanh/webhook and an nginx `return 204`, then the
# time from a webhook to its datafile on disk. Loopback only; every process started here is
# stopped by its PID. Usage:
#   bench/listen/run.sh [SECONDS_PER_RUN] [ROUNDS]      (defaults: 10 and 3; ROUNDS 0: only
#                                                       the webhook-to-disk latency)
# DFHOOK_BIN picks the binary (default build/release/apps/dfhook/dfhook; dfhook-net must sit
# next to it). Needs wrk, webhook, nginx, openssl, curl, python3, taskset (scripts/bootstrap bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
seconds=${1:-10}
rounds=${2:-3}
connections=64
server_cpu=0
client_cpu=1
secret=test-webhook-secret
good_signature=sha1=e8c4e277c194cf9e38f998e1334028645534b7b2
wrong_signature=sha1=0000000000000000000000000000000000000000
dfhook_src=${DFHOOK_BIN:-build/release/apps/dfhook/dfhook}
nginx=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap stop_all EXIT

source bench/common.sh

copy_binaries "$dfhook_src"
make_certificates

# One nginx process (no master/worker split) serving the CDN over HTTPS and, on another port,
# the ceiling: `return 204` over plain HTTP, no access log. The CDN logs $request_time.
cdn_port=$(free_port)
ceiling_port=$(free_port)
mkdir -p "$tmp/nginx" "$tmp/cdn/json"
cp tests/fixtures/datafile-1234-r1.json "$tmp/cdn/json/1234.json"
{
  nginx_conf_head 1024
  cat <<EOF
  log_format timing escape=json '{"uri":"\$request_uri","status":\$status,'
    '"bytes":\$body_bytes_sent,"request_time":\$request_time,"msec":\$msec,'
    '"connection":\$connection,"connection_requests":\$connection_requests}';
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$cdn_port ssl;
    ssl_certificate $tmp/leaf.pem;
    ssl_certificate_key $tmp/leaf.key;
    root $tmp/cdn;
    access_log $tmp/nginx/cdn-access.log timing;
  }
  server {
    listen 127.0.0.1:$ceiling_port;
    access_log off;
    location / { return 204; }
  }
}
EOF
} >"$tmp/nginx/nginx.conf"
taskset -c "$server_cpu" "$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
  -c "$tmp/nginx/nginx.conf" </dev/null >/dev/null 2>"$tmp/nginx/stderr" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_port "$cdn_port" "$nginx_pid"
wait_port "$ceiling_port"

# adnanh/webhook with the rule Optimizely's docs give: HMAC-SHA1 of the body in X-Hub-Signature.
webhook_port=$(free_port)
cat >"$tmp/hooks.json" <<EOF
[{"id": "optimizely", "execute-command": "/bin/true", "response-message": "ok",
  "trigger-rule": {"match": {"type": "payload-hmac-sha1", "secret": "$secret",
    "parameter": {"source": "header", "name": "X-Hub-Signature"}}}}]
EOF
# A fresh webhook for every round: after a signed flood (a /bin/true per delivery) its heap is
# ten times larger and its wrong-signature answers a fifth slower, which would flatter dfhook.
start_webhook() {
  if [ -n "${webhook_pid:-}" ]; then
    kill -TERM "$webhook_pid" 2>/dev/null || true
    wait "$webhook_pid" 2>/dev/null || true
  fi
  taskset -c "$server_cpu" webhook -hooks "$tmp/hooks.json" -ip 127.0.0.1 -port "$webhook_port" \
    </dev/null >>"$tmp/webhook.log" 2>&1 &
  webhook_pid=$!
  pids+=("$webhook_pid")
  wait_port "$webhook_port"
}
webhook_pid=
start_webhook

# dfhook listen as a daemon runs it: JSON log lines on stderr, into a file.
echo "$secret" >"$tmp/secret"
taskset -c "$server_cpu" "$dfhook" listen --host 127.0.0.1 --port 0 --secret-file "$tmp/secret" \
  --out-dir "$tmp/out" --poll-interval 0 --cacert "$tmp/ca.pem" \
  --connect-to "cdn.optimizely.com:443:127.0.0.1:$cdn_port" \
  --connect-to "optimizely.s3.amazonaws.com:443:127.0.0.1:$cdn_port" \
  --log-format json </dev/null >/dev/null 2>"$tmp/dfhook.log" &
dfhook_pid=$!
pids+=("$dfhook_pid")
dfhook_port=
for _ in $(seq 200); do
  dfhook_port=$(sed -n 's/.*"listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$tmp/dfhook.log")
  [ -n "$dfhook_port" ] && break
  sleep 0.05
done
[ -n "$dfhook_port" ] || { cat "$tmp/dfhook.log" >&2; exit 1; }
dfhook_url=http://127.0.0.1:$dfhook_port/webhooks/optimizely

post() {  # post URL SIGNATURE -> prints the status code and the body
  curl -sS -o "$tmp/answer" -w '%{http_code} ' -H 'Content-Type: application/json' \
    -H "X-Hub-Signature: $2" --data-binary @tests/fixtures/seed-payload.json "$1"
  cat "$tmp/answer"
  echo
}

# Store revision 1 through a real webhook and download, then wait (at most 10 s) until the same
# delivery is answered up-to-date.
echo "first delivery: $(post "$dfhook_url" "$good_signature")"
for _ in $(seq 200); do
  answer=$(post "$dfhook_url" "$good_signature")
  case $answer in *up-to-date*) break ;; esac
  sleep 0.05
done
echo "then: $answer"
case $answer in *up-to-date*) ;; *) echo "datafile not stored" >&2; cat "$tmp/dfhook.log" >&2; exit 1 ;; esac
echo "nginx: $(post "http://127.0.0.1:$ceiling_port/" "$wrong_signature")"
echo "webhook, wrong signature: $(post "http://127.0.0.1:$webhook_port/hooks/optimizely" "$wrong_signature")"
echo "webhook, signed: $(post "http://127.0.0.1:$webhook_port/hooks/optimizely" "$good_signature")"
echo "dfhook, wrong signature: $(post "$dfhook_url" "$wrong_signature")"

cpu_ticks() {  # utime + stime of the whole process, in clock ticks
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

cpu_busy() {  # busy (non-idle, non-iowait) clock ticks of the server's CPU so far
  awk -v cpu="cpu$server_cpu" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# Waits (at most 10 s) until the server's CPU was less than 20% busy over 100 ms: webhook goes
# on forking /bin/true for queued deliveries after a signed flood ends, which would otherwise
# fall into the next row's measurement.
settle() {
  local before after hz
  hz=$(getconf CLK_TCK)
  for _ in $(seq 100); do
    before=$(cpu_busy)
    sleep 0.1
    after=$(cpu_busy)
    [ $((after - before)) -lt $((hz / 50)) ] && return 0
  done
  echo "(CPU $server_cpu still busy after 10 s)"
}

# One wrk run against a server; prints a row of the results table.
measure() {  # measure NAME PID URL SIGNATURE
  local name=$1 pid=$2 url=$3 signature=$4 out=$tmp/wrk.out before after
  settle
  BODY_FILE=tests/fixtures/seed-payload.json SIGNATURE=$signature \
    timeout 30 taskset -c "$client_cpu" wrk -t1 -c"$connections" -d2s -s bench/listen/post.lua \
    "$url" >/dev/null
  before=$(cpu_ticks "$pid")
  BODY_FILE=tests/fixtures/seed-payload.json SIGNATURE=$signature \
    timeout $((seconds + 30)) taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" \
    --latency -s bench/listen/post.lua "$url" >"$out"
  after=$(cpu_ticks "$pid")
  local requests rate p99 statuses hwm errors
  requests=$(awk '/requests in/ { print $1 }' "$out")
  rate=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$out")
  p99=$(awk '/^p99_us:/ { print $2 }' "$out")
  statuses="$(sed -n 's/^ *Non-2xx or 3xx responses: //p' "$out")"
  statuses="${statuses:-0} of $requests"
  errors=$(sed -n 's/^ *Socket errors: //p' "$out")
  hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  awk -v n="$name" -v r="$rate" -v q="$requests" -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" \
    -v p="$p99" -v m="$hwm" -v s="$statuses" -v e="${errors:-none}" -v rows="$tmp/rows" \
    'BEGIN { printf "| %s | %s | %.1f | %.2f | %s | %s | %s |\n", n, r, t / hz * 1e6 / q, p / 1000, m, s, e
             printf "%s\t%s\t%.2f\t%.3f\t%s\n", n, r, t / hz * 1e6 / q, p / 1000, m >> rows }'
}

echo
echo "load average before: $(cat /proc/loadavg)"
echo "wrk -t1 -c$connections -d${seconds}s --latency, server on CPU $server_cpu, wrk on CPU $client_cpu"
for round in $(seq "$rounds"); do
  echo
  [ "$round" -gt 1 ] && start_webhook
  echo "round $round (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "| server, requests | req/s | server CPU µs/req | p99 ms | VmHWM MiB | non-2xx answers | socket errors |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  measure "nginx return 204" "$nginx_pid" "http://127.0.0.1:$ceiling_port/" "$wrong_signature"
  measure "webhook, wrong signature" "$webhook_pid" "http://127.0.0.1:$webhook_port/hooks/optimizely" "$wrong_signature"
  measure "dfhook, wrong signature" "$dfhook_pid" "$dfhook_url" "$wrong_signature"
  measure "dfhook, signed up-to-date" "$dfhook_pid" "$dfhook_url" "$good_signature"
  measure "webhook, signed (runs /bin/true)" "$webhook_pid" "http://127.0.0.1:$webhook_port/hooks/optimizely" "$good_signature"
done
echo
echo "load average after: $(cat /proc/loadavg)"
echo
[ "$rounds" -gt 0 ] && echo "medians over $rounds rounds, and the goals" &&
python3 - "$tmp/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rate, cpu, p99, hwm = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(rate), float(cpu), float(p99), float(hwm)))
med = {n: [statistics.median(v[i] for v in r) for i in range(4)] for n, r in rows.items()}
for n, (rate, cpu, p99, hwm) in med.items():
    print(f"| {n} | {rate:.0f} req/s | {cpu:.1f} µs/req | p99 {p99:.2f} ms | VmHWM {max(v[3] for v in rows[n]):.1f} MiB |")
ng = med["nginx return 204"]
for n, w in (("dfhook, wrong signature", "webhook, wrong signature"),
             ("dfhook, signed up-to-date", "webhook, signed (runs /bin/true)")):
    rate, cpu, p99, hwm = med[n]
    print(f"{n}: {rate / med[w][0]:.2f}x {w} (goal >= 3), {rate / ng[0]:.2f}x nginx (goal >= 0.4), "
          f"{cpu:.1f} µs/req (goal <= 25), p99 {p99 / ng[2]:.2f}x nginx's (goal <= 2.5), "
          f"VmHWM {max(v[3] for v in rows[n]):.1f} MiB (goal < 30)")
b, w = med["dfhook, signed up-to-date"], med["webhook, wrong signature"]
print(f"dfhook, signed up-to-date: {b[0] / w[0]:.2f}x webhook's wrong-signature rate, "
      "its fastest answer (webhook has no up-to-date answer: a signed delivery runs the hook)")
PY
echo "dfhook log: $(wc -l <"$tmp/dfhook.log") lines, $(grep -c '"msg":"rejected requests"' "$tmp/dfhook.log" || true) rejection summaries"

# The time from a webhook to its datafile on disk (dfhook is already running; same CDN).
echo
settle
DFHOOK_URL=$dfhook_url OUT_DIR=$tmp/out CDN_ROOT=$tmp/cdn CDN_LOG=$tmp/nginx/cdn-access.log \
  DFHOOK_LOG=$tmp/dfhook.log SECRET=$secret \
  timeout 300 python3 bench/listen/update_latency.py "${UPDATES:-50}" "${FLAGS:-200}"
