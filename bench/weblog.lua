-- wrk script for bench/weblog.sh: every request varies its path (routes
-- with numeric ids and query strings), agent, referrer and client address
-- (X-Forwarded-For, which nginx's realip module logs as $remote_addr).
local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 13; SM-A515F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
  "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
  "iBusiness/3.2.1 (Android 13; SM-A515F)",
  "iBusiness/3.2.1 (iOS 17.1; iPhone14,2)",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
}
local referrers = {
  "-", "-", "-", "https://t.me/ibusiness_kz", "https://www.instagram.com/ibusiness.kz/",
  "https://www.google.kz/", "https://yandex.kz/search/?text=ibusiness", "https://vk.com/ibusiness",
  "https://www.facebook.com/", "https://ibusiness.kz/catalog",
}
local paths = {
  function() return "/" end,
  function() return "/catalog" end,
  function() return "/catalog/" .. math.random(1, 400) end,
  function() return "/api/v1/orders/" .. math.random(1, 100000) .. "?phone=7701" .. math.random(1000000, 9999999) end,
  function() return "/api/v1/products?page=" .. math.random(1, 50) end,
  function() return "/login" end,
  function() return "/static/app.js" end,
  function() return "/missing/" .. math.random(1, 1000) end,
  function() return "/old-page" end,
  function() return "/error" end,
}

function request()
  local ip = "10." .. math.random(0, 3) .. "." .. math.random(0, 39) .. "." .. math.random(1, 60)
  local headers = {
    ["User-Agent"] = agents[math.random(#agents)],
    ["X-Forwarded-For"] = ip,
  }
  local r = referrers[math.random(#referrers)]
  if r ~= "-" then headers["Referer"] = r end
  return wrk.format("GET", paths[math.random(#paths)](), headers)
end
