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
