// The privacy center: a data subject's own page, opened by the app in a web
// view as /me#token=dbm_…  The session token is read from the fragment
// (never sent in a URL to the server, never logged), kept in this tab's
// sessionStorage only, and the fragment is cleared. Every value is put on
// the page as text, never as HTML.
"use strict";

const T = {
  ru: {
    title: "Мои данные", subtitle: "Что «iBusiness» хранит о вас и что вы можете с этим сделать",
    noSession: "Откройте эту страницу из приложения",
    noSessionHint: "Страница открывается из приложения «iBusiness», где вы вошли в свою учётную запись. Ссылка действует несколько минут.",
    overview: "Обзор", statusLabel: "Состояние:", sessionUntil: "Сеанс действует до",
    held: "Какие данные о вас хранятся", signOut: "Выйти", signedOut: "Вы вышли. Закройте эту страницу.",
    copy: "Копия ваших данных", copyHint: "Копия выдаётся сразу и бесплатно; запрос записывается в журнал.",
    getCopy: "Получить копию", getInfo: "Что делается с моими данными",
    field: "Данные", value: "Значение", keptUntil: "Хранится до", purposes: "Для чего они используются",
    print: "Распечатать", download: "Скачать (JSON)",
    channels: "Реклама и уведомления",
    channelsHint: "Реклама приходит только по каналам, на которые вы дали согласие. Отключить можно в любой момент.",
    channel: "Канал", ads: "Реклама", objections: "Возражения",
    requests: "Мои обращения", kind: "Вид", state: "Состояние", due: "Срок ответа",
    newRequest: "Новое обращение", whichField: "Что исправить", newValue: "Правильное значение",
    whichChannels: "По каким каналам", whichMessages: "Какие сообщения",
    m_all: "Все", m_marketing: "Рекламные", m_service: "Служебные",
    withdrawalWarn: "После отзыва согласия обработка прекращается, а данные уничтожаются в течение одного рабочего дня — кроме тех, что закон обязывает хранить. Если у вас есть неисполненные обязательства, отзыв будет отклонён с объяснением.",
    comment: "Комментарий (необязательно)", send: "Отправить",
    disclosures: "Кому передавались ваши данные", when: "Когда", recipient: "Получатель", what: "Что",
    policy: "Политика конфиденциальности",
    k_access: "Копия данных", k_information: "Сведения об обработке", k_rectification: "Исправить данные",
    k_blocking: "Заблокировать данные", k_unblocking: "Разблокировать данные", k_objection: "Не присылать сообщения",
    k_withdrawal: "Отозвать согласие и уничтожить данные", k_destruction: "Уничтожить данные", k_complaint: "Жалоба",
    s_received: "получено", s_identity_verified: "личность подтверждена", s_in_progress: "в работе",
    s_completed: "выполнено", s_refused: "отказано",
    st_active: "действует", st_blocked: "заблокировано", st_withdrawn: "согласие отозвано",
    st_barred_minor: "обработка остановлена", st_destroyed: "уничтожено",
    on: "вкл.", off: "выкл.", none: "нет", nothing: "Пока ничего.", overdue: "просрочено",
    adsOn: "Реклама по каналу {c}", loading: "Загрузка…", saved: "Сохранено.", sent: "Обращение отправлено.",
    copyReady: "Копия готова.", copyOf: "Копия персональных данных, выдана {t}", infoOf: "Сведения об обработке, выданы {t}",
    noValue: "—", missingValue: "Укажите правильное значение.", missingChannel: "Выберите хотя бы один канал.",
    expired: "Сеанс закончился. Откройте страницу из приложения ещё раз.",
    o_service: "служебные", o_marketing: "рекламные",
    whileThen: "пока вы пользуетесь приложением, затем {n} мес.", noPurpose: "не хранится",
  },
  kk: {
    title: "Менің деректерім", subtitle: "«iBusiness» сіз туралы не сақтайды және сіз онымен не істей аласыз",
    noSession: "Бұл бетті қосымшадан ашыңыз",
    noSessionHint: "Бет сіз өз тіркелгіңізге кірген «iBusiness» қосымшасынан ашылады. Сілтеме бірнеше минут жарамды.",
    overview: "Шолу", statusLabel: "Күйі:", sessionUntil: "Сеанс мына уақытқа дейін жарамды:",
    held: "Сіз туралы қандай деректер сақталады", signOut: "Шығу", signedOut: "Сіз шықтыңыз. Бұл бетті жабыңыз.",
    copy: "Деректеріңіздің көшірмесі", copyHint: "Көшірме бірден және тегін беріледі; сұрау журналға жазылады.",
    getCopy: "Көшірмені алу", getInfo: "Менің деректеріммен не істеледі",
    field: "Деректер", value: "Мәні", keptUntil: "Сақталу мерзімі", purposes: "Олар не үшін пайдаланылады",
    print: "Басып шығару", download: "Жүктеп алу (JSON)",
    channels: "Жарнама және хабарламалар",
    channelsHint: "Жарнама тек сіз келісім берген арналар арқылы келеді. Оны кез келген уақытта өшіруге болады.",
    channel: "Арна", ads: "Жарнама", objections: "Қарсылықтар",
    requests: "Менің өтініштерім", kind: "Түрі", state: "Күйі", due: "Жауап беру мерзімі",
    newRequest: "Жаңа өтініш", whichField: "Нені түзету керек", newValue: "Дұрыс мәні",
    whichChannels: "Қай арналар бойынша", whichMessages: "Қандай хабарламалар",
    m_all: "Барлығы", m_marketing: "Жарнамалық", m_service: "Қызметтік",
    withdrawalWarn: "Келісім кері қайтарылғаннан кейін өңдеу тоқтатылады, ал деректер бір жұмыс күні ішінде жойылады — заң сақтауды міндеттейтіндерінен басқасы. Орындалмаған міндеттемелеріңіз болса, кері қайтару себебі түсіндіріліп, қабылданбайды.",
    comment: "Түсініктеме (міндетті емес)", send: "Жіберу",
    disclosures: "Деректеріңіз кімге берілді", when: "Қашан", recipient: "Алушы", what: "Не",
    policy: "Құпиялылық саясаты",
    k_access: "Деректер көшірмесі", k_information: "Өңдеу туралы мәліметтер", k_rectification: "Деректерді түзету",
    k_blocking: "Деректерді бұғаттау", k_unblocking: "Деректерді бұғаттаудан шығару", k_objection: "Хабарлама жібермеу",
    k_withdrawal: "Келісімді кері қайтару және деректерді жою", k_destruction: "Деректерді жою", k_complaint: "Шағым",
    s_received: "қабылданды", s_identity_verified: "жеке басы расталды", s_in_progress: "орындалуда",
    s_completed: "орындалды", s_refused: "бас тартылды",
    st_active: "белсенді", st_blocked: "бұғатталған", st_withdrawn: "келісім кері қайтарылды",
    st_barred_minor: "өңдеу тоқтатылды", st_destroyed: "жойылды",
    on: "қосулы", off: "өшірулі", none: "жоқ", nothing: "Әзірге ештеңе жоқ.", overdue: "мерзімі өтті",
    adsOn: "{c} арнасы бойынша жарнама", loading: "Жүктелуде…", saved: "Сақталды.", sent: "Өтініш жіберілді.",
    copyReady: "Көшірме дайын.", copyOf: "Дербес деректердің көшірмесі, берілген уақыты: {t}", infoOf: "Өңдеу туралы мәліметтер, берілген уақыты: {t}",
    noValue: "—", missingValue: "Дұрыс мәнін көрсетіңіз.", missingChannel: "Кемінде бір арнаны таңдаңыз.",
    expired: "Сеанс аяқталды. Бетті қосымшадан қайта ашыңыз.",
    o_service: "қызметтік", o_marketing: "жарнамалық",
    whileThen: "қосымшаны пайдаланып жүргенде, содан кейін {n} ай", noPurpose: "сақталмайды",
  },
  en: {
    title: "My data", subtitle: "What «iBusiness» keeps about you, and what you can do about it",
    noSession: "Open this page from the app",
    noSessionHint: "This page opens from the «iBusiness» app, where you are signed in. The link works for a few minutes.",
    overview: "Overview", statusLabel: "Status:", sessionUntil: "This session lasts until",
    held: "What data about you is kept", signOut: "Sign out", signedOut: "You are signed out. Close this page.",
    copy: "A copy of your data", copyHint: "The copy is given at once and free of charge; the request is recorded.",
    getCopy: "Get a copy", getInfo: "What is done with my data",
    field: "Data", value: "Value", keptUntil: "Kept until", purposes: "What it is used for",
    print: "Print", download: "Download (JSON)",
    channels: "Advertising and messages",
    channelsHint: "Advertising comes only on the channels you agreed to. You can turn it off at any time.",
    channel: "Channel", ads: "Advertising", objections: "Objections",
    requests: "My requests", kind: "Kind", state: "State", due: "Answer due",
    newRequest: "A new request", whichField: "What to correct", newValue: "The correct value",
    whichChannels: "On which channels", whichMessages: "Which messages",
    m_all: "All", m_marketing: "Advertising", m_service: "Service",
    withdrawalWarn: "Once you withdraw your consent, processing stops and your data is destroyed within one working day, except what a law obliges the operator to keep. If you have obligations outstanding, the withdrawal is refused with the reason.",
    comment: "Comment (optional)", send: "Send",
    disclosures: "Who received your data", when: "When", recipient: "Recipient", what: "What",
    policy: "Privacy policy",
    k_access: "A copy of my data", k_information: "How my data is processed", k_rectification: "Correct my data",
    k_blocking: "Block my data", k_unblocking: "Unblock my data", k_objection: "Stop messages",
    k_withdrawal: "Withdraw consent and destroy my data", k_destruction: "Destroy my data", k_complaint: "Complaint",
    s_received: "received", s_identity_verified: "identity verified", s_in_progress: "in progress",
    s_completed: "completed", s_refused: "refused",
    st_active: "active", st_blocked: "blocked", st_withdrawn: "consent withdrawn",
    st_barred_minor: "processing stopped", st_destroyed: "destroyed",
    on: "on", off: "off", none: "none", nothing: "Nothing yet.", overdue: "overdue",
    adsOn: "Advertising by {c}", loading: "Loading…", saved: "Saved.", sent: "Your request was sent.",
    copyReady: "Your copy is ready.", copyOf: "A copy of personal data, given {t}", infoOf: "How personal data is processed, given {t}",
    noValue: "—", missingValue: "Give the correct value.", missingChannel: "Choose at least one channel.",
    expired: "The session has ended. Open the page from the app again.",
    o_service: "service", o_marketing: "advertising",
    whileThen: "while you use the app, then {n} months", noPurpose: "not kept",
  },
};

const $ = (id) => document.getElementById(id);
let lang = "ru";
let policy = null;
let me = null;
let lastCopy = null;

function t(key, vars) {
  let s = (T[lang] && T[lang][key]) || T.ru[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
  return s;
}

/** A policy text in the page's language (Russian when it has no other). */
function name(text) {
  if (!text) return "";
  return text[lang] || text.ru || "";
}

function say(message, error) {
  const s = $("status");
  s.textContent = message || "";
  s.className = error ? "error" : "";
}

const token = () => sessionStorage.getItem("derbes-me") || "";

async function api(method, path, body) {
  try {
    return await callApi(token(), method, path, body);
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem("derbes-me");
      showSignin();
      throw new Error(t("expired"));
    }
    throw e;
  }
}

function translate() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  for (const b of document.querySelectorAll("nav.lang button")) {
    b.setAttribute("aria-pressed", b.dataset.lang === lang ? "true" : "false");
  }
  // The policy document in the reader's language (Russian is the original).
  $("policy-link").href = "/api/v1/policy/document?lang=" + lang;
}

function setLang(l) {
  if (!T[l]) return;
  lang = l;
  sessionStorage.setItem("derbes-me-lang", l);
  translate();
  if (me) render();
  if (lastCopy) renderCopy(lastCopy);
}

function showSignin() {
  $("center").hidden = true;
  $("signin").hidden = false;
}

function category(id) {
  return policy && policy.categories.find((c) => c.id === id);
}

function fieldName(path) {
  const [c, f] = path.split(".");
  const cat = category(c);
  const field = cat && cat.fields.find((x) => x.id === f);
  return field ? name(cat.name) + ": " + name(field.name) : path;
}

function channelName(id) {
  const c = policy && (policy.channels || []).find((x) => x.id === id);
  return c ? name(c.name) : id;
}

function emptyRow(body, cols) {
  const tr = el("tr");
  const td = el("td", t("nothing"), "muted");
  td.colSpan = cols;
  tr.append(td);
  body.append(tr);
}

function render() {
  $("subject-status").textContent = t("st_" + me.status);
  $("session-until").textContent = almaty(me.session_expires_at);
  const cats = $("categories");
  cats.replaceChildren(...me.categories.map((c) => el("li", category(c) ? name(category(c).name) : c)));

  const ch = $("channels");
  ch.replaceChildren();
  for (const c of me.channels) {
    const tr = el("tr");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "ads-" + c.channel;
    box.checked = c.marketing;
    box.setAttribute("aria-label", t("adsOn", { c: channelName(c.channel) }));
    box.addEventListener("change", () => setChannel(c.channel, box.checked, box));
    const cell = el("td");
    const lab = el("label", null, "check");
    lab.htmlFor = box.id;
    lab.append(box, el("span", box.checked ? t("on") : t("off")));
    cell.append(lab);
    tr.append(el("th", channelName(c.channel)), cell,
      el("td", c.objected.length ? c.objected.map((k) => t("o_" + k)).join(", ") : t("none")));
    tr.firstChild.scope = "row";
    ch.append(tr);
  }

  const rq = $("requests");
  rq.replaceChildren();
  for (const r of me.requests) {
    const tr = el("tr");
    const st = el("td");
    st.append(el("span", t("s_" + r.state), "badge"));
    if (r.overdue) st.append(" ", el("span", t("overdue"), "badge late"));
    tr.append(el("td", t("k_" + r.kind)), st, el("td", almaty(r.due)));
    rq.append(tr);
  }
  if (!me.requests.length) emptyRow(rq, 3);

  const ds = $("disclosures");
  ds.replaceChildren();
  for (const d of me.disclosures) {
    const rec = policy && policy.recipients.find((x) => x.id === d.recipient);
    const what = d.categories.map((c) => (category(c) ? name(category(c).name) : c)).join(", ");
    const tr = el("tr");
    tr.append(el("td", almaty(d.at)), el("td", rec ? name(rec.name) : d.recipient), el("td", what));
    ds.append(tr);
  }
  if (!me.disclosures.length) emptyRow(ds, 3);

  // What may be corrected: the fields of the categories held that are not technical.
  const sel = $("rect-field");
  const keep = sel.value;
  sel.replaceChildren();
  for (const cat of (policy ? policy.categories : [])) {
    if (!cat.personal || cat.technical) continue;
    for (const f of cat.fields) {
      const o = el("option", name(cat.name) + ": " + name(f.name));
      o.value = cat.id + "." + f.id;
      sel.append(o);
    }
  }
  if (keep) sel.value = keep;
  const oc = $("objection-channels");
  oc.replaceChildren();
  for (const c of me.channels) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = c.channel;
    box.id = "obj-" + c.channel;
    const lab = el("label", null, "check");
    lab.htmlFor = box.id;
    lab.append(box, el("span", channelName(c.channel)));
    oc.append(lab);
  }
}

async function load() {
  say(t("loading"));
  try {
    if (!policy) policy = (await (await fetch("/api/v1/policy")).json()).policy;
    me = await api("GET", "/api/v1/me");
    $("signin").hidden = true;
    $("center").hidden = false;
    render();
    say("");
  } catch (e) {
    say(e.message, true);
  }
}

async function setChannel(channel, on, box) {
  box.disabled = true;
  try {
    await api("PUT", "/api/v1/me/channels/" + encodeURIComponent(channel), { marketing: on });
    await load();
    say(t("saved"));
  } catch (e) {
    box.checked = !on;
    say(e.message, true);
  } finally {
    box.disabled = false;
  }
}

function keptUntil(u) {
  if (!u) return "";
  if (u.kind === "date") return almaty(u.at);
  if (u.kind === "relationship_then") return t("whileThen", { n: u.months });
  return t("noPurpose");
}

function renderCopy(x) {
  lastCopy = x;
  $("copy-out").hidden = false;
  const when = almaty(x.generated_at);
  $("copy-caption").textContent = t(x.kind === "access" ? "copyOf" : "infoOf", { t: when });
  $("print-head").textContent = t("title") + " — " + $("copy-caption").textContent;
  const body = $("copy-fields");
  body.replaceChildren();
  for (const f of x.fields) {
    const v = f.value === undefined || f.value === null ? t("noValue") : String(f.value);
    const kept = keptUntil(f.retention && f.retention.until);
    const tr = el("tr");
    tr.append(el("th", fieldName(f.field)), el("td", v), el("td", kept));
    tr.firstChild.scope = "row";
    body.append(tr);
  }
  if (!x.fields.length) emptyRow(body, 3);
  $("copy-purposes").replaceChildren(...x.purposes.map((p) => el("li", name(p.name))));
}

async function getCopy(kind) {
  say(t("loading"));
  try {
    renderCopy(await api("POST", "/api/v1/me/copy", { kind }));
    say(t("copyReady"));
    await load();
    say(t("copyReady"));
  } catch (e) {
    say(e.message, true);
  }
}

function download() {
  if (!lastCopy) return;
  const blob = new Blob([JSON.stringify(lastCopy, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "my-data-" + lastCopy.generated_at.slice(0, 10) + ".json";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function showKind() {
  const k = $("kind").value;
  $("for-rectification").hidden = k !== "rectification";
  $("for-objection").hidden = k !== "objection";
  $("for-withdrawal").hidden = k !== "withdrawal";
}

async function fileRequest(ev) {
  ev.preventDefault();
  const kind = $("kind").value;
  const body = { kind };
  const text = $("text").value.trim();
  if (text) body.text = text;
  if (kind === "rectification") {
    const v = $("rect-value").value.trim();
    if (!v) {
      say(t("missingValue"), true);
      $("rect-value").focus();
      return;
    }
    body.values = { [$("rect-field").value]: v };
  }
  if (kind === "objection") {
    const channels = [...document.querySelectorAll("#objection-channels input:checked")].map((b) => b.value);
    if (!channels.length) {
      say(t("missingChannel"), true);
      return;
    }
    body.details = { channels, kind: $("objection-kind").value };
  }
  try {
    await api("POST", "/api/v1/me/requests", body);
    $("request-form").reset();
    showKind();
    await load();
    say(t("sent"));
  } catch (e) {
    say(e.message, true);
  }
}

async function signOut() {
  try {
    await api("DELETE", "/api/v1/me/session");
  } catch (e) { /* ended already */ }
  sessionStorage.removeItem("derbes-me");
  me = null;
  showSignin();
  say(t("signedOut"));
}

function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  if (hash.get("token")) {
    sessionStorage.setItem("derbes-me", hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  lang = query.get("lang") || hash.get("lang") || sessionStorage.getItem("derbes-me-lang") || "ru";
  if (!T[lang]) lang = "ru";
  for (const b of document.querySelectorAll("nav.lang button")) b.addEventListener("click", () => setLang(b.dataset.lang));
  $("get-copy").addEventListener("click", () => getCopy("access"));
  $("get-info").addEventListener("click", () => getCopy("information"));
  $("print").addEventListener("click", () => window.print());
  $("download").addEventListener("click", download);
  $("kind").addEventListener("change", showKind);
  $("request-form").addEventListener("submit", fileRequest);
  $("sign-out").addEventListener("click", signOut);
  translate();
  showKind();
  if (token()) load();
  else showSignin();
}

start();
