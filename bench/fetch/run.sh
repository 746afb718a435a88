#!/usr/bin/env bash
# dfhook fetch-datafile against curl, as whole processes, from a local nginx over HTTPS:
#   1. the 304 path (the out-dir holds the current datafile and its validators) against
#      curl sending the same If-None-Match;
#   2. a 10 MB datafile downloaded, validated, fsynced and stored (--force over a lower stored
#      revision, so it is really written every run) against `curl -o FILE`;
#   3. the peak RSS of (2) from /usr/bin/time -v.
# Loopback only; nginx is started here with its own config in a temp dir and stopped by its
# PID. Usage:
#   bench/fetch/run.sh [RUNS]        (default 30 timed runs per command, after 5 warm-ups)
# DFHOOK_BIN picks the binary (default build/release/apps/dfhook/dfhook; dfhook-net must sit
# next to it). FLAGS sets the size of the big datafile (default 7800, about 10 MB).
# Needs hyperfine, nginx, openssl, curl, python3, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-30}
flags=${FLAGS:-7800}
dfhook_src=${DFHOOK_BIN:-build/release/apps/dfhook/dfhook}
nginx=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
nginx_pid=
stop_all() {
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap stop_all EXIT
# A proxy from the environment would receive the loopback requests instead.
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY

source bench/common.sh

copy_binaries "$dfhook_src"
make_certificates

# The served datafiles: the big one at /json/1234.json (revision 3) and, for the 304 path with
# a typical datafile, the small fixture at /json/5678.json.
mkdir -p "$tmp/nginx" "$tmp/cdn/json"
python3 scripts/gen-datafile.py --project-id 1234 --revision 3 --flags "$flags" \
  >"$tmp/cdn/json/1234.json"
python3 scripts/gen-datafile.py --project-id 5678 --revision 3 --flags 30 \
  >"$tmp/cdn/json/5678.json"
size=$(stat -c %s "$tmp/cdn/json/1234.json")
small_size=$(stat -c %s "$tmp/cdn/json/5678.json")

# The CDN: nginx over HTTPS, serving $tmp/cdn.
port=$(free_port)
{
  nginx_conf_head 256
  cat <<EOF
  access_log $tmp/nginx/access.log;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $tmp/leaf.pem;
    ssl_certificate_key $tmp/leaf.key;
    root $tmp/cdn;
  }
}
EOF
} >"$tmp/nginx/nginx.conf"
"$nginx" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" \
  </dev/null >/dev/null 2>"$tmp/nginx/stderr" &
nginx_pid=$!
wait_port "$port" "$nginx_pid"

net=(--cacert "$tmp/ca.pem" --connect-to "cdn.optimizely.com:443:127.0.0.1:$port")
url=https://cdn.optimizely.com/json/1234.json
small_url=https://cdn.optimizely.com/json/5678.json

# The stores the 304 runs start from, filled by dfhook itself; the validators must be nginx's.
"$dfhook" -q fetch-datafile --project-id 1234 --out-dir "$tmp/current" "${net[@]}"
"$dfhook" -q fetch-datafile --project-id 5678 --out-dir "$tmp/current-small" "${net[@]}"
etag=$(curl -sS "${net[@]}" -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
small_etag=$(curl -sS "${net[@]}" -D - -o /dev/null "$small_url" | tr -d '\r' |
  sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
grep -qF "\"etag\":\"${etag//\"/\\\"}\"" "$tmp/current/.dfhook/1234.json.meta.json" ||
  { echo "the stored ETag is not nginx's $etag" >&2; exit 1; }
# The seed of every unconditional run: revision 1 stored, so revision 3 is written each time.
python3 scripts/gen-datafile.py --project-id 1234 --revision 1 --flags 30 >"$tmp/cdn/json/1234.json.r1"
mv "$tmp/cdn/json/1234.json" "$tmp/big.json"
mv "$tmp/cdn/json/1234.json.r1" "$tmp/cdn/json/1234.json"
"$dfhook" -q fetch-datafile --project-id 1234 --out-dir "$tmp/seed" "${net[@]}"
mv "$tmp/big.json" "$tmp/cdn/json/1234.json"
[ "$(curl -sS "${net[@]}" -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')" = "$etag" ] ||
  { echo "the served ETag changed" >&2; exit 1; }

# Every command must do what it is measured for, once, before it is timed.
out=$("$dfhook" fetch-datafile --project-id 1234 --out-dir "$tmp/current" "${net[@]}" 2>&1)
[ -z "$out" ] || { echo "dfhook did not take the 304 path: $out" >&2; exit 1; }
code=$(curl -sS "${net[@]}" -H "If-None-Match: $etag" -o /dev/null -w '%{http_code}' "$url")
[ "$code" = 304 ] || { echo "curl got $code, not 304" >&2; exit 1; }
rm -rf "$tmp/forced" && cp -a "$tmp/seed" "$tmp/forced"
out=$("$dfhook" fetch-datafile --project-id 1234 --out-dir "$tmp/forced" --force "${net[@]}" 2>&1)
case $out in "updated 1234.json revision 1 -> 3 "*) ;; *) echo "not written: $out" >&2; exit 1 ;; esac
cmp "$tmp/forced/1234.json" "$tmp/cdn/json/1234.json"

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "kernel: $(uname -r); $(curl --version | head -1)"
echo "datafiles: $size bytes (--flags $flags), $small_size bytes (--flags 30)"
echo "load average before: $(cat /proc/loadavg)"
echo

dfhook_q=$(printf '%q' "$dfhook")
net_q=$(printf '%q ' "${net[@]}")
hyperfine -N --warmup 5 --runs "$runs" --export-markdown "$tmp/not-modified.md" \
  -n "curl 304, $small_size B" \
  "curl -sS $net_q -H 'If-None-Match: $small_etag' -o /dev/null $small_url" \
  -n "dfhook 304, $small_size B" \
  "$dfhook_q fetch-datafile --project-id 5678 --out-dir $tmp/current-small $net_q" \
  -n "curl 304, $size B" \
  "curl -sS $net_q -H 'If-None-Match: $etag' -o /dev/null $url" \
  -n "dfhook 304, $size B" \
  "$dfhook_q fetch-datafile --project-id 1234 --out-dir $tmp/current $net_q"
echo
echo "load average: $(cat /proc/loadavg)"
hyperfine --warmup 3 --runs "$runs" --export-markdown "$tmp/download.md" \
  --prepare "rm -rf $tmp/forced $tmp/curl.json && cp -a $tmp/seed $tmp/forced" \
  -n "curl -o FILE, $size B" \
  "curl -sS $net_q -o $tmp/curl.json $url" \
  -n "dfhook --force, $size B" \
  "$dfhook_q -q fetch-datafile --project-id 1234 --out-dir $tmp/forced --force $net_q"
echo
echo "load average: $(cat /proc/loadavg)"

rss() {  # rss COMMAND... -> "Maximum resident set size" in KiB, median of 5 runs
  for _ in 1 2 3 4 5; do
    rm -rf "$tmp/forced" "$tmp/curl.json" && cp -a "$tmp/seed" "$tmp/forced"
    /usr/bin/time -v "$@" 2>&1 >/dev/null | sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p'
  done | sort -n | sed -n 3p
}
dfhook_rss=$(rss "$dfhook" -q fetch-datafile --project-id 1234 --out-dir "$tmp/forced" --force "${net[@]}")
curl_rss=$(rss curl -sS "${net[@]}" -o "$tmp/curl.json" "$url")
limit_kib=$(( (3 * size + 10 * 1024 * 1024) / 1024 ))
echo "peak RSS, 10 MB fetch: dfhook $dfhook_rss KiB, curl $curl_rss KiB; limit 3 x $size B + 10 MiB = $limit_kib KiB"
echo
cat "$tmp/not-modified.md"
echo
cat "$tmp/download.md"
