-- wrk script: every request POSTs the file $BODY_FILE with X-Hub-Signature: $SIGNATURE.
-- At the end it prints the 99th percentile of the latency in microseconds.
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Hub-Signature"] = os.getenv("SIGNATURE")

-- No response() callback: with one, wrk hands every answer to Lua and becomes the bottleneck
-- (nginx's rate halves). wrk's "Non-2xx or 3xx responses" line tells the answers apart, and
-- run.sh checks each server's answer with curl first.
function done(summary, latency, requests)
  io.write(string.format("p99_us: %d\n", latency:percentile(99)))
end
