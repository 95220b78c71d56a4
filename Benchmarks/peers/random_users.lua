-- wrk script: GET /recommend/{random MovieLens 100k user}; prints a JSON summary at the end.
math.randomseed(42)

request = function()
  return wrk.format("GET", "/recommend/" .. math.random(1, 943))
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.3f, "requests_per_second": %.1f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), errors,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
