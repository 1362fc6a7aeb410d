// The rights desk page: a thin client of derbes' HTTP API. Every value is
// put on the page as text (never as HTML); the token lives in this tab's
// sessionStorage only.
"use strict";

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("derbes-token") || "";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function showError(err) {
  $("error").textContent = err ? err : "";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const e = data && data.error ? data.error : { code: res.status, message: res.statusText };
    const details = (e.details || []).map((d) => `  ${d.field}: ${d.reason}`).join("\n");
    const reasons = (e.reasons || []).map((r) => `  ${r.code}: ${r.message}`).join("\n");
    throw new Error(`${e.code}: ${e.message}${details ? "\n" + details : ""}${reasons ? "\n" + reasons : ""}`);
  }
  return data;
}

// Late duties besides requests: a role without the capability sees none.
async function loadDuties() {
  const body = $("duties");
  body.replaceChildren();
  const rows = [];
  try {
    for (const b of await api("GET", "/api/v1/breaches?overdue=true&limit=500")) {
      rows.push(["breach notice", b.state, b.notice_due, b.breach_id]);
    }
  } catch (e) { /* not this role's register */ }
  try {
    for (const n of await api("GET", "/api/v1/notices?overdue=true&limit=500")) {
      rows.push([n.kind + " notice", n.state, n.due_at || "", n.notice_id]);
    }
  } catch (e) { /* not this role's */ }
  for (const [duty, state, due, id] of rows) {
    const tr = el("tr", null, "row overdue");
    const st = el("td");
    st.append(el("span", state, "badge"), " ", el("span", "overdue", "badge late"));
    tr.append(el("td", duty), st, el("td", String(due).replace("T", " ").slice(0, 16)), el("td", id, "muted"));
    body.append(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    const td = el("td", "Nothing late.", "muted");
    td.colSpan = 4;
    tr.append(td);
    body.append(tr);
  }
}

async function loadQueue() {
  showError();
  loadDuties();
  const q = new URLSearchParams();
  if ($("state").value) q.set("state", $("state").value);
  if ($("overdue").checked) q.set("overdue", "true");
  q.set("limit", "500");
  try {
    const list = await api("GET", "/api/v1/requests?" + q);
    const body = $("queue");
    body.replaceChildren();
    for (const r of list) {
      const tr = el("tr", null, "row" + (r.overdue ? " overdue" : ""));
      tr.append(el("td", r.kind));
      const st = el("td");
      st.append(el("span", r.state, "badge"));
      if (r.overdue) st.append(" ", el("span", "overdue", "badge late"));
      tr.append(st, el("td", r.due.replace("T", " ").slice(0, 16)), el("td", r.subject_id || "—", "muted"));
      tr.addEventListener("click", () => show(r.request_id));
      body.append(tr);
    }
    if (!list.length) {
      const tr = el("tr");
      const td = el("td", "No requests.", "muted");
      td.colSpan = 4;
      tr.append(td);
      body.append(tr);
    }
  } catch (e) {
    showError(e.message);
  }
}

function button(label, onClick, primary) {
  const b = el("button", label, primary ? "primary" : "");
  b.type = "button";
  b.addEventListener("click", async () => {
    showError();
    try {
      await onClick();
    } catch (e) {
      showError(e.message);
    }
  });
  return b;
}

async function act(id, action, needsReason) {
  let reason;
  if (needsReason) {
    reason = prompt(action === "refuse" ? "The reason for the refusal (sent to the requester):" : "The answer given:");
    if (!reason) return;
  }
  await api("POST", `/api/v1/requests/${encodeURIComponent(id)}/actions`, reason ? { action, reason } : { action });
  await show(id);
  await loadQueue();
}

async function openExport(id, lang) {
  const res = await fetch(`/api/v1/requests/${encodeURIComponent(id)}/export?format=html&lang=${lang}`, {
    headers: { Authorization: "Bearer " + token() },
  });
  if (!res.ok) {
    const e = await res.json();
    throw new Error(`${e.error.code}: ${e.error.message}`);
  }
  const blob = new Blob([await res.text()], { type: "text/html" });
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

async function show(id) {
  showError();
  const r = await api("GET", `/api/v1/requests/${encodeURIComponent(id)}`);
  const d = $("detail");
  d.className = "";
  d.replaceChildren();
  const facts = el("table");
  for (const [k, v] of [
    ["request", r.request_id],
    ["kind", r.kind],
    ["state", r.state + (r.state_reason ? " — " + r.state_reason : "")],
    ["due", r.due + (r.overdue ? "  (overdue)" : "")],
    ["received", r.received_at],
    ["channel", r.channel],
    ["requester", r.requester],
    ["subject", r.subject_id || "—"],
    ["routed to", (r.routed_to || []).join(", ") || "—"],
    ["ground", r.ground || "—"],
    ["waits for", (r.waiting || []).join(", ") || "—"],
    ["text", r.text || "—"],
    ["destroyed", r.outcome ? r.outcome.destroyed.join(", ") || "—" : "—"],
    [
      "kept by law",
      r.outcome
        ? r.outcome.kept_by_law.map((k) => `${k.category} (${k.purpose}) until ${k.until.slice(0, 10)}`).join("; ") || "—"
        : "—",
    ],
  ]) {
    const tr = el("tr");
    tr.append(el("th", k), el("td", v));
    facts.append(tr);
  }
  d.append(facts);
  const actions = el("div");
  const open = !["completed", "refused"].includes(r.state);
  if (r.state === "received") actions.append(button("Identity verified", () => act(id, "verify"), true));
  if (r.state === "identity_verified") actions.append(button("Start", () => act(id, "start")));
  if (["identity_verified", "in_progress"].includes(r.state))
    actions.append(button("Complete", () => act(id, "complete", r.kind === "complaint"), true));
  if (open) actions.append(button("Refuse with a reason", () => act(id, "refuse", true)));
  if (["access", "information"].includes(r.kind) && ["identity_verified", "in_progress", "completed"].includes(r.state)) {
    actions.append(button("Answer (Русский)", () => openExport(id, "ru")));
    actions.append(button("Answer (English)", () => openExport(id, "en")));
  }
  if (["withdrawal", "destruction"].includes(r.kind) && r.state === "completed") {
    actions.append(
      button("Certificate", async () => {
        const c = await api("GET", `/api/v1/requests/${encodeURIComponent(id)}/certificate`);
        const pre = el("pre", JSON.stringify(c, null, 2));
        d.append(pre);
      })
    );
  }
  d.append(actions);
  const steps = el("table");
  const head = el("tr");
  head.append(el("th", "when"), el("th", "step"), el("th", "by"), el("th", "note"));
  steps.append(head);
  for (const s of r.steps || []) {
    const tr = el("tr");
    tr.append(el("td", s.at.replace("T", " ").slice(0, 19)), el("td", s.to), el("td", s.actor), el("td", s.reason || ""));
    steps.append(tr);
  }
  d.append(el("h2", "Steps"), steps);
}

async function receive(ev) {
  ev.preventDefault();
  showError();
  const f = new FormData($("new"));
  const body = { kind: f.get("kind"), channel: f.get("channel"), requester: f.get("requester") };
  if (f.get("subject_id")) body.subject_id = f.get("subject_id").trim();
  else if (f.get("iin")) body.identification = { iin: f.get("iin").trim() };
  if (f.get("received_at")) body.received_at = f.get("received_at") + ":00+05:00";
  if (f.get("text")) body.text = f.get("text");
  try {
    const r = await api("POST", "/api/v1/requests", body);
    $("new").reset();
    await loadQueue();
    await show(r.request_id);
  } catch (e) {
    showError(e.message);
  }
}

$("connect").addEventListener("click", () => {
  sessionStorage.setItem("derbes-token", $("token").value.trim());
  $("token").value = "";
  $("who").textContent = "token set for this tab";
  loadQueue();
});
$("refresh").addEventListener("click", loadQueue);
$("state").addEventListener("change", loadQueue);
$("overdue").addEventListener("change", loadQueue);
$("new").addEventListener("submit", receive);
if (token()) {
  $("who").textContent = "token set for this tab";
  loadQueue();
}
