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

/** What derbes itself says of a request's step (`said`: a code and its
 * particulars), in `lang` (ru, kk or en); empty when it says nothing. */
function said(s, lang) {
  if (!s) return "";
  const W = {
    ru: {
      blocked_at_intake: "данные заблокированы с момента обращения (4.2)",
      verified_in_app: "личность подтверждена входом в приложение (обращение из приложения)",
      answered_in_app: "ответ дан в приложении",
      corrected: "исправлено: ",
      unblocked_on_refusal: "данные, заблокированные с момента обращения, разблокированы",
      already_blocked: "данные заблокированы с момента обращения (4.2)",
      nothing_to_change: "менять нечего: статус пользователя был не «{}»",
      outstanding_obligations: "есть неисполненные обязательства: ",
      active: "действует", blocked: "заблокированы",
    },
    kk: {
      blocked_at_intake: "деректер өтініш түскен сәттен бастап бұғатталды (4.2)",
      verified_in_app: "жеке басы қосымшаға кіру арқылы расталды (қосымшадан өтініш)",
      answered_in_app: "жауап қосымшада берілді",
      corrected: "түзетілді: ",
      unblocked_on_refusal: "өтініш түскен сәттен бастап бұғатталған деректер бұғаттаудан шығарылды",
      already_blocked: "деректер өтініш түскен сәттен бастап бұғатталған (4.2)",
      nothing_to_change: "өзгертетін ештеңе жоқ: пайдаланушының мәртебесі «{}» емес еді",
      outstanding_obligations: "орындалмаған міндеттемелер бар: ",
      active: "белсенді", blocked: "бұғатталған",
    },
    en: {
      blocked_at_intake: "data blocked from the moment of the request (4.2)",
      verified_in_app: "identity verified by the app's sign-in (in-app request)",
      answered_in_app: "answered in the app",
      corrected: "corrected: ",
      unblocked_on_refusal: "the data blocked since the request was received is unblocked",
      already_blocked: "blocked since the request was received (4.2)",
      nothing_to_change: "nothing to change: the user was not {}",
      outstanding_obligations: "outstanding obligations: ",
      active: "active", blocked: "blocked",
    },
  };
  const w = W[lang] || W.ru;
  const text = w[s.code];
  if (text === undefined) return s.code;
  switch (s.code) {
    case "corrected": return text + (s.fields || []).join(", ");
    case "outstanding_obligations": return text + (s.obligations || []).join("; ");
    case "nothing_to_change": return text.replace("{}", w[s.status] || s.status);
    default: return text;
  }
}
