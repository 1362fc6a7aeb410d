-- wrk script: POST one decision per request with a staff bearer token.
-- Environment: DERBES_TOKEN, DERBES_SUBJECT.
local token = os.getenv("DERBES_TOKEN")
local subject = os.getenv("DERBES_SUBJECT")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"subject_id":"' .. subject .. '","operation":"use","purpose":"identification","categories":["identity","full_name"]}'

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, p50 %.0f us, p99 %.0f us\n",
    summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
