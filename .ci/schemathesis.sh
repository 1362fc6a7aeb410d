#!/usr/bin/env bash
# schemathesis (PyPI), every check, against the real binary: one run per
# staff role, with that role's token, on a data directory seeded with
# synthetic subjects. Fails on any finding. Prints, per role, the requests
# sent and the failures found.
#
#   .ci/schemathesis.sh                  # SQLite
#   DATABASE_URL=postgres://... .ci/schemathesis.sh
#
# ST_EXAMPLES (default 10) test cases per operation and phase; ST_SEED fixes
# the generation (default a constant, so a CI finding reproduces);
# DERBES_BIN the binary (default target/debug/derbes, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${DERBES_BIN:-target/debug/derbes}"
VENV="${ST_VENV:-target/schemathesis-venv}"
EXAMPLES="${ST_EXAMPLES:-10}"
SEED="${ST_SEED:-20261202}"
VERSION=4.32.5

[ -x "$BIN" ] || cargo build -q -p derbes
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION"
fi

work=$(mktemp -d)
chmod 700 "$work"
data="$work/data"
out="$work/reports"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$BIN" dev seed --subjects 20 --seed 7 --data-dir "$data" --json >/dev/null
roles=$(python3 -c 'import tomllib,sys; print(" ".join(r["id"] for r in tomllib.load(open("policy/ibusiness.toml","rb"))["roles"]))')
declare -A token
for role in $roles; do
  token[$role]=$("$BIN" staff add --name "schemathesis $role" --role "$role" --data-dir "$data" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
done

# The limits would answer 429 to a fuzzer sending thousands of lookups.
"$BIN" serve --data-dir "$data" --listen 127.0.0.1:0 \
  --lookup-limit 1000000 --auth-failure-limit 1000000 --session-call-limit 1000000 --purge-every 0 2>"$work/serve.log" &
server=$!
addr=""
for _ in $(seq 1 100); do
  addr=$(grep -o 'address=http://[0-9.:]*' "$work/serve.log" | head -1 | sed 's|address=http://||') || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log" >&2; echo "FAIL: derbes did not start" >&2; exit 1; }

# The subject's own door: a session the backend opens for a registered user.
token[data_subject]=$(python3 - "http://$addr" "${token[backend_service]}" <<'PY'
import json, sys, urllib.request, urllib.error
base, staff = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + staff, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
status, v = call("POST", "/api/v1/subjects", {
    "fields": {"identity.iin": "871008401427", "identity.rk_citizen": True,
               "full_name.surname": "Тестова", "full_name.first_name": "Мадина",
               "contact.phone": "+77019990000"},
    "consents": [{"kind": "policy"}, {"kind": "marketing", "channel": "sms"}]})
if status == 409:
    status, v = call("GET", "/api/v1/subjects/lookup?iin=871008401427")
subject = v["subject_id"]
status, v = call("POST", f"/api/v1/subjects/{subject}/sessions", {"minutes": 60})
print(v["token"])
PY
)
roles="$roles data_subject"

storage=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["storage"])' "http://$addr/readyz")
echo "derbes on $storage at $addr; schemathesis $VERSION, $EXAMPLES examples per operation and phase, seed $SEED"
status=0
printf '%-26s %9s %9s\n' role requests failures
for role in $roles; do
  set +e
  "$VENV/bin/st" --config-file .ci/schemathesis.toml run "http://$addr/api/v1/openapi.json" \
    -H "Authorization: Bearer ${token[$role]}" \
    --checks all --max-examples "$EXAMPLES" --seed "$SEED" --no-color \
    --report json --report-json-path "$out/$role.json" >"$work/$role.txt" 2>&1
  rc=$?
  set -e
  read -r requests failures < <(python3 - "$out/$role.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["test_cases"]["generated"], sum(f["count"] for f in r["failures"]) + len(r["errors"]))
EOF
)
  printf '%-26s %9s %9s\n' "$role" "$requests" "$failures"
  if [ "$rc" -ne 0 ] || [ "$failures" -ne 0 ]; then
    status=1
    sed -n '/FAILURES/,$p' "$work/$role.txt" | head -150
  fi
done
if ! kill -0 "$server" 2>/dev/null; then
  echo "FAIL: derbes exited during the run" >&2
  status=1
fi
exit "$status"
