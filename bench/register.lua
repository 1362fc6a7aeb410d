-- wrk script: POST /api/v1/subjects, a new synthetic adult on every request
-- (a valid IIN and a phone number of its own: the counter starts at
-- DERBES_BASE, each wrk thread 10^5 further), a staff bearer token in
-- DERBES_TOKEN. Prints: rate <req/s> p50 <us> p99 <us> non2xx <n>
local token = os.getenv("DERBES_TOKEN")
local base = tonumber(os.getenv("DERBES_BASE") or "0")
local threads = 0

setup = function(thread)
  thread:set("start", base + threads * 100000)
  threads = threads + 1
end

local n = 0
local w1 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
local w2 = {3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2}

local function check(d, w)
  local s = 0
  for i = 1, 11 do s = s + d[i] * w[i] end
  return s % 11
end

-- The IIN of person k: born k % 20000 days after 1950-01-01 (a woman),
-- serial k / 20000; nil when no check digit exists for it.
local function iin(k)
  local born = os.date("!%y%m%d", -631152000 + (k % 20000) * 86400)
  local body = born .. "4" .. string.format("%04d", math.floor(k / 20000) % 10000)
  local d = {}
  for i = 1, 11 do d[i] = tonumber(body:sub(i, i)) end
  local c = check(d, w1)
  if c == 10 then c = check(d, w2) end
  if c == 10 then return nil end
  return body .. c
end

request = function()
  local k, id
  repeat
    n = n + 1
    k = (start or base) + n
    id = iin(k)
  until id
  local body = string.format(
    '{"fields":{"identity.iin":"%s","identity.rk_citizen":true,"full_name.surname":"Нагрузова","full_name.first_name":"Тест","contact.phone":"+7701%07d"},"consents":[{"kind":"policy"}]}',
    id, k % 10000000)
  return wrk.format("POST", "/api/v1/subjects", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

dofile("bench/report.lua")
