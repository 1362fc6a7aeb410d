#!/usr/bin/env bash
# derbes ingest against GoAccess on the same log, written by a real nginx.
#
# nginx (Debian nginx-light) serves loopback; wrk (bench/weblog.lua) varies
# path, agent, referrer and client address (X-Forwarded-For → realip), so
# nginx itself writes a realistic `combined` log. GoAccess (JSON output) and
# `derbes ingest` then read that file; the script prints both throughputs
# and their ratio, and checks that total requests, per-status and per-route
# counts (GoAccess's paths with numeric segments folded as derbes' routes)
# and unique visitors agree.
#
# Usage: bench/weblog.sh [seconds of load, default 20]
# Needs nginx-light, goaccess and wrk (installed with apt-get when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-20}"
PORT=18181

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v goaccess >/dev/null || need+=(goaccess)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "needs: ${need[*]} (apt-get install ${need[*]})" >&2; exit 2
  fi
fi
cargo build --release -q -p derbes
BIN=$PWD/target/release/derbes

DIR=$(mktemp -d)
trap 'kill $(cat "$DIR/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$DIR"' EXIT
cat > "$DIR/nginx.conf" <<CONF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 1024; }
http {
  access_log $DIR/access.log combined buffer=256k flush=1s;
  client_body_temp_path $DIR; proxy_temp_path $DIR; fastcgi_temp_path $DIR; uwsgi_temp_path $DIR; scgi_temp_path $DIR;
  set_real_ip_from 127.0.0.1;
  real_ip_header X-Forwarded-For;
  server {
    listen 127.0.0.1:$PORT;
    location /missing { return 404; }
    location /old-page { return 301 /catalog; }
    location /error { return 500; }
    location /login { return 302 /; }
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$DIR/nginx.conf" -p "$DIR"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
echo "== nginx writes the log: wrk, $SECS s"
wrk -t2 -c32 -d"${SECS}s" -s bench/weblog.lua "http://127.0.0.1:$PORT/" | grep -E "requests in|Requests/sec"
kill -QUIT "$(cat "$DIR/nginx.pid")"
for _ in $(seq 1 50); do [ -f "$DIR/nginx.pid" ] || break; sleep 0.1; done
LINES=$(wc -l < "$DIR/access.log")
SIZE=$(du -h "$DIR/access.log" | cut -f1)
echo "   $LINES lines ($SIZE) written by nginx"

echo "== GoAccess (JSON report)"
G0=$(date +%s.%N)
goaccess "$DIR/access.log" --log-format=COMBINED --no-query-string --no-global-config --max-items=10000000 -o "$DIR/goaccess.json" 2>/dev/null
G1=$(date +%s.%N)

echo "== derbes ingest (parse + pseudonymise + aggregate, one core)"
D0=$(date +%s.%N)
"$BIN" ingest "$DIR/access.log" --data-dir "$DIR/derbes" --json > "$DIR/ingest.json"
D1=$(date +%s.%N)
for by in status route day; do
  "$BIN" stats --by $by --k 1 --data-dir "$DIR/derbes" --json > "$DIR/stats-$by.json"
done

python3 - "$DIR" "$LINES" "$G0" "$G1" "$D0" "$D1" <<'PY'
import json, re, sys
d, lines = sys.argv[1], int(sys.argv[2])
g_secs = float(sys.argv[4]) - float(sys.argv[3])
d_wall = float(sys.argv[6]) - float(sys.argv[5])
ga = json.load(open(f"{d}/goaccess.json"))
ing = json.load(open(f"{d}/ingest.json"))
stats = {k: json.load(open(f"{d}/stats-{k}.json")) for k in ("status", "route", "day")}
d_secs = ing["seconds"]
g_lps, d_lps = lines / g_secs, lines / d_secs
print(f"GoAccess: {g_secs:6.2f} s  {g_lps:>12,.0f} lines/s")
print(f"derbes:   {d_secs:6.2f} s  {d_lps:>12,.0f} lines/s  (whole command with start-up and commit: {d_wall:.2f} s)")
print(f"ratio derbes/GoAccess: {d_lps / g_lps:.1f}x")

ok = True
def check(name, a, b):
    global ok
    same = a == b
    ok &= same
    print(f"  {'ok ' if same else 'DIFF'} {name}: GoAccess {a} | derbes {b}")

check("total requests", ga["general"]["total_requests"], ing["counted"])
g_status = {int(i["data"].split()[0]): i["hits"]["count"] for x in ga["status_codes"]["data"] for i in x.get("items", [])}
d_status = {int(r["value"]): r["requests"] for r in stats["status"]["rows"]}
check("requests per status", dict(sorted(g_status.items())), dict(sorted(d_status.items())))
def fold(p):
    return "/" + "/".join("{id}" if s.isdigit() else s for s in p.split("/") if s) if p != "/" else "/"
g_routes = {}
for r in ga["requests"]["data"]:
    k = fold(r["data"])
    g_routes[k] = g_routes.get(k, 0) + r["hits"]["count"]
for r in ga.get("not_found", {}).get("data", []):
    k = fold(r["data"])
    g_routes[k] = g_routes.get(k, 0) + r["hits"]["count"]
for r in ga.get("static_requests", {}).get("data", []):
    k = fold(r["data"])
    g_routes[k] = g_routes.get(k, 0) + r["hits"]["count"]
d_routes = {r["value"]: r["requests"] for r in stats["route"]["rows"]}
check("requests per route", dict(sorted(g_routes.items())), dict(sorted(d_routes.items())))
g_uv = ga["general"]["unique_visitors"]
d_uv = sum(r["visitors"] for r in stats["day"]["rows"])
if any(r["approximate"] for r in stats["day"]["rows"]):
    # Beyond the exact limit derbes counts with a HyperLogLog sketch (±0.8 %).
    err = abs(d_uv - g_uv) / max(g_uv, 1)
    good = err < 0.03
    ok &= good
    print(f"  {'ok ' if good else 'DIFF'} unique visitors (client, day, agent): GoAccess {g_uv} | derbes ~{d_uv} (sketch, {err:.2%} off)")
else:
    check("unique visitors (client, day, agent)", g_uv, d_uv)
sys.exit(0 if ok else 1)
PY
