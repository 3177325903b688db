-- wrk script for bench/run: POST, Content-Length 0, and a JSON summary on one line, prefixed
-- "BENCH_JSON ", from done(). Latency values are microseconds; "percentiles" holds the curve
-- bench/run plots.
--
-- Environment:
--   COOKIE       the whole Cookie header value, the same on every request (empty: no cookie)
--   COOKIE_FILE  instead, a file of Cookie header values, one a line (bench/seal-pool.py): each
--                of the WRK_THREADS threads takes every WRK_THREADS-th line, so no two threads
--                send the same one, and cycles through its share: tokens repeat only after
--                the whole pool has been sent
--   DELAY_MS     milliseconds each connection waits before each request (a steady rate of about
--                connections x 1000 / DELAY_MS per second); unset: as fast as possible
--
-- Every scenario goes through request() returning a request built in init(), the cookie-less one
-- too, so wrk's own cost per request is the same in every scenario.
wrk.method = "POST"
wrk.headers["Content-Length"] = "0"

local threads = {}
local next_index = 0
function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
  threads[#threads + 1] = thread
end

local requests_built = {}
function init(args)
  local file = os.getenv("COOKIE_FILE")
  local cookie = os.getenv("COOKIE")
  local function build(value)
    local headers = { ["Content-Length"] = "0" }
    if value ~= nil and value ~= "" then headers["Cookie"] = value end
    return wrk.format(nil, nil, headers)
  end
  if file ~= nil and file ~= "" then
    -- wrk.format once around a marker, then concatenation: formatting each of hundreds of
    -- thousands of requests would take seconds per run.
    local marker = "\1COOKIE\1"
    local before, after = build(marker):match("^(.-)" .. marker .. "(.*)$")
    local stride = tonumber(os.getenv("WRK_THREADS")) or 1
    local line_number = 0
    for line in io.lines(file) do
      if line_number % stride == thread_index then requests_built[#requests_built + 1] = before .. line .. after end
      line_number = line_number + 1
    end
  end
  if #requests_built == 0 then requests_built[1] = build(cookie) end
  pool = #requests_built
  sent = 0
end

function request()
  sent = sent + 1
  return requests_built[(sent - 1) % pool + 1]
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms ~= nil and delay_ms > 0 then
  function delay() return delay_ms end
end

local points = { 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99 }
local curve = { 1, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999 }

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  local function add(k, v) parts[#parts + 1] = string.format('"%s":%s', k, v) end
  -- Requests handed to a connection (answered or not) and how many distinct cookies they carried.
  local issued, distinct = 0, 0
  local file, cookie = os.getenv("COOKIE_FILE"), os.getenv("COOKIE")
  for _, t in ipairs(threads) do
    local n, size = t:get("sent") or 0, t:get("pool") or 1
    issued = issued + n
    distinct = distinct + math.min(n, size)
  end
  -- Without a pool every thread sends the same cookie, or none.
  if file == nil or file == "" then distinct = (cookie ~= nil and cookie ~= "" and issued > 0) and 1 or 0 end
  add("requests", summary.requests)
  add("duration_us", summary.duration)
  add("bytes", summary.bytes)
  add("connect_errors", e.connect)
  add("read_errors", e.read)
  add("write_errors", e.write)
  add("status_errors", e.status)
  add("timeouts", e.timeout)
  add("issued", issued)
  add("distinct_cookies", distinct)
  add("lat_min_us", latency.min)
  add("lat_max_us", latency.max)
  add("lat_mean_us", string.format("%.1f", latency.mean))
  add("lat_stdev_us", string.format("%.1f", latency.stdev))
  for _, p in ipairs(points) do
    add(string.format("p%s_us", tostring(p)), latency:percentile(p))
  end
  local c = {}
  for _, p in ipairs(curve) do
    c[#c + 1] = string.format("[%s,%d]", tostring(p), latency:percentile(p))
  end
  add("curve", "[" .. table.concat(c, ",") .. "]")
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
