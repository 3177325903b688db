-- wrk script for bench/run: POST with an optional Cookie header (env COOKIE, the whole
-- header value), and a JSON summary on one line, prefixed "BENCH_JSON ", from done().
-- Latency values are microseconds; "percentiles" holds the curve bench/run plots.
wrk.method = "POST"
wrk.headers["Content-Length"] = "0"
local cookie = os.getenv("COOKIE")
if cookie ~= nil and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local points = { 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99 }
local curve = { 1, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999 }

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  local function add(k, v) parts[#parts + 1] = string.format('"%s":%s', k, v) end
  add("requests", summary.requests)
  add("duration_us", summary.duration)
  add("bytes", summary.bytes)
  add("connect_errors", e.connect)
  add("read_errors", e.read)
  add("write_errors", e.write)
  add("status_errors", e.status)
  add("timeouts", e.timeout)
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
