-- wrk script: POST /api/v1/decisions, the marketing-by-SMS question, for
-- each subject id of DERBES_IDS (one per line) in turn; a staff bearer
-- token in DERBES_TOKEN. Prints: rate <req/s> p50 <us> p99 <us> non2xx <n>
local token = os.getenv("DERBES_TOKEN")
local ids = {}
for line in io.lines(os.getenv("DERBES_IDS")) do ids[#ids + 1] = line end
local i = 0

setup = function(thread)
  thread:set("offset", math.random(#ids))
end

request = function()
  i = i + 1
  local id = ids[((offset or 0) + i) % #ids + 1]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, '{"subject_id":"' .. id .. '","operation":"use","purpose":"marketing","categories":["contact"],"channel":"sms"}')
end

dofile("bench/report.lua")
