-- wrk script: POST one decision per request with a staff bearer token
-- (DERBES_TOKEN, DERBES_SUBJECT), or, without DERBES_SUBJECT, a plain GET
-- (the server's own ceiling: /healthz). Prints one line the script reads:
--   rate <requests/s> p50 <us> p99 <us> non2xx <n>
local token = os.getenv("DERBES_TOKEN")
local subject = os.getenv("DERBES_SUBJECT")
if subject and subject ~= "" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.body = '{"subject_id":"' .. subject .. '","operation":"use","purpose":"identification","categories":["identity","full_name"]}'
end

dofile("bench/report.lua")
