-- wrk script: every request POSTs the file $BODY_FILE with X-Hub-Signature: $SIGNATURE.
-- At the end it prints the answers by status, so a run that got the wrong answers shows.
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Hub-Signature"] = os.getenv("SIGNATURE")

-- Counted per status in globals of each thread's Lua state (wrk copies numbers out of a thread
-- reliably; tables it does not).
local watched = {200, 202, 204, 401, 500}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  local key = "n" .. status
  _G[key] = (_G[key] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, status in ipairs(watched) do
    local total = 0
    for _, thread in ipairs(threads) do
      total = total + (thread:get("n" .. status) or 0)
    end
    if total > 0 then
      table.insert(parts, status .. "=" .. total)
    end
  end
  local other = summary.requests
  for _, status in ipairs(watched) do
    for _, thread in ipairs(threads) do
      other = other - (thread:get("n" .. status) or 0)
    end
  end
  if other > 0 then
    table.insert(parts, "other=" .. other)
  end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("p99_us: %d\n", latency:percentile(99)))
end
