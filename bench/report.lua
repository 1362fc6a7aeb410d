-- The line every bench script's wrk run ends with, which the shell scripts read:
--   rate <requests/s> p50 <us> p99 <us> non2xx <n>
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("rate %.0f p50 %.0f p99 %.0f non2xx %d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    summary.errors.status))
end
