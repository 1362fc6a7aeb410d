// What the pages people work in share (the desk, the privacy center):
// building elements with text only (never HTML), Almaty time, and calling
// the API with a bearer token. Loaded before each page's own script.
"use strict";

/** An element whose content is `text`, as text. */
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

/** A time in Almaty, with its offset: 2026-12-03 17:05 (UTC+05:00). */
function almaty(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const local = new Date(d.getTime() + 5 * 3600 * 1000).toISOString();
  return local.slice(0, 10) + " " + local.slice(11, 16) + " (UTC+05:00)";
}

/** Call the API as `token`: the answer (JSON or text), or an Error whose
 * message names the code, the fields and the reasons, and whose `status`
 * is the HTTP status. */
async function callApi(token, method, path, body) {
  const headers = { Authorization: "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const e = data && data.error ? data.error : { code: res.status, message: res.statusText };
    const details = (e.details || []).map((d) => `${d.field}: ${d.reason}`).join("; ");
    const reasons = (e.reasons || []).map((r) => `${r.code}: ${r.message}`).join("; ");
    const err = new Error(`${e.message}${details ? " — " + details : ""}${reasons ? " — " + reasons : ""}`);
    err.status = res.status;
    err.code = e.code;
    throw err;
  }
  return data;
}
