# Shared by the benchmark scripts (sourced, from the repository's top directory, with $tmp set
# to the run's temporary directory).

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Copies dfhook and dfhook-net (which must sit next to it) into $tmp/bin, so that a rebuild
# during the run does not change what is measured; sets $dfhook to the copy.
copy_binaries() {  # copy_binaries PATH_OF_DFHOOK
  mkdir -p "$tmp/bin"
  cp "$1" "$(dirname "$1")/dfhook-net" "$tmp/bin/"
  dfhook=$tmp/bin/dfhook
}

# A throwaway CA ($tmp/ca.pem) and a leaf certificate ($tmp/leaf.pem, $tmp/leaf.key) for the
# Optimizely host names and 127.0.0.1, as tests/cli/cdn.py makes them.
make_certificates() {
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
    -subj "/CN=dfhook bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -x509 "${ec[@]}" -keyout "$tmp/leaf.key" -out "$tmp/leaf.pem" -CA "$tmp/ca.pem" \
    -CAkey "$tmp/ca.key" -days 2 -subj "/CN=cdn.optimizely.com" \
    -addext "subjectAltName=DNS:cdn.optimizely.com,DNS:optimizely.s3.amazonaws.com,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
}

# Waits (at most 10 s) until 127.0.0.1:PORT accepts connections; with PID, fails at once when
# that process has died (printing its nginx logs when there are any).
wait_port() {  # wait_port PORT [PID]
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
      cat "$tmp/nginx/stderr" "$tmp/nginx/error.log" >&2 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# The start of every bench nginx.conf: one process (no master/worker split, so the PID started
# is the whole server) keeping its files in $tmp/nginx, then an open http block the caller
# completes and closes.
nginx_conf_head() {  # nginx_conf_head WORKER_CONNECTIONS
  cat <<EOF
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections $1; }
http {
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  types { application/json json; }
EOF
}
