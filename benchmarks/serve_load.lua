-- wrk script of benchmarks/serve_load.sh: posts the search bodies of $VECGO_QUERIES (one JSON
-- body a line) in turn, and prints a JSON summary line when done.
local bodies = {}
for line in io.lines(os.getenv("VECGO_QUERIES")) do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
local headers = { ["Content-Type"] = "application/json" }

request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/search", headers, bodies[i])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
