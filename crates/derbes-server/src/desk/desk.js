// The rights desk: the data-protection officer's page, a thin client of
// derbes' HTTP API. Every value is put on the page as text (never as HTML);
// the staff token lives in this tab's sessionStorage only. Interface text in
// Russian (the default), Kazakh and English; every time in Almaty time with
// its offset.
"use strict";

const T = {
  ru: {
    title: "derbes · стол обращений", token: "Токен сотрудника", open: "Открыть", signOut: "Выйти",
    dashboard: "Сводка", received: "получено", answered: "отвечено", weeks12: "— за 12 недель",
    g_open: "открыто", g_overdue: "просрочено", g_week: "срок на этой неделе",
    g_30: "в срок за 30 дней", g_90: "в срок за 90 дней",
    g_outbox: "события систем: ждут / не доставлены", g_breaches: "нарушения в работе",
    search: "Найти пользователя", by: "По", iin: "ИИН", phone: "телефону", subjectId: "идентификатору", find: "Найти",
    queue: "Очередь", state: "Состояние", kind: "Вид", due: "Срок", channel: "Канал",
    f_open: "открытые", f_all: "все", overdueOnly: "только просроченные", dueWeek: "срок в течение 7 дней",
    lateDuties: "Просроченные обязанности", duty: "Обязанность", nothingLate: "Ничего не просрочено.",
    breachNotice: "уведомление о нарушении", notice: "уведомление пользователю",
    receive: "Принять обращение", requester: "Кто обращается",
    c_written: "письмо или курьер", c_email: "электронная почта", c_authority: "уполномоченный орган", c_in_app: "в приложении", c_operator: "оператор",
    r_subject: "сам пользователь", r_legal_representative: "законный представитель", r_authorised_body: "уполномоченный орган", r_operator: "оператор",
    orSubjectId: "или идентификатор пользователя", receivedAt: "Получено (время Алматы; пусто — сейчас)",
    whichField: "Что исправить", newValue: "Правильное значение", whichChannels: "Каналы",
    letterRef: "Текст обращения или номер письма (шифруется)", record: "Записать",
    detail: "Подробности", chooseOne: "Выберите обращение в очереди или найдите пользователя.",
    noRequests: "Обращений нет.", signedInAs: "{name} · {role}", needToken: "Введите токен сотрудника.",
    request: "Обращение", receivedOn: "Получено", routedTo: "Направлено", waits: "Ждёт", text: "Текст",
    values: "Исправленные значения", steps: "Шаги", when: "Когда", step: "Шаг", who: "Кто", note: "Примечание",
    subject: "Пользователь", destroyed: "Уничтожено", keptByLaw: "Хранится по закону",
    verify: "Личность подтверждена", start: "Начать работу", complete: "Выполнить", refuse: "Отказать",
    apply: "Применить исправление", answerRu: "Ответ (рус.)", answerKk: "Ответ (каз.)", answerEn: "Ответ (англ.)", certificate: "Акт об уничтожении",
    noteOptional: "Примечание (необязательно)", reasonRequired: "Причина отказа (сообщается заявителю)",
    answerRequired: "Данный ответ (кратко)", confirm: "Подтвердить", cancel: "Отмена",
    status: "Статус", registered: "Зарегистрирован", policyVersion: "Версия политики", relationshipEnded: "Отношения прекращены",
    categories: "Категории данных (без значений)", consents: "Согласия", channels: "Каналы", requests: "Обращения",
    disclosures: "Передачи", holds: "Запреты на уничтожение", obligations: "Обязательства", audit: "Журнал аудита",
    given: "дано", marketing: "реклама", objected: "возражения", none: "нет", recipient: "Получатель",
    action: "Действие", decision: "Решение", notFound: "Не найдено.", user: "пользователь (в приложении)",
    s_received: "получено", s_identity_verified: "личность подтверждена", s_in_progress: "в работе",
    s_completed: "выполнено", s_refused: "отказано", overdue: "просрочено",
    st_active: "действует", st_blocked: "заблокирован", st_withdrawn: "согласие отозвано", st_barred_minor: "обработка остановлена (несовершеннолетний)", st_destroyed: "уничтожен",
    cs_active: "действует", cs_withdrawn: "отозвано", cs_expired: "истекло",
    k_access: "копия данных", k_information: "сведения об обработке", k_rectification: "исправление",
    k_blocking: "блокирование", k_unblocking: "разблокирование", k_objection: "возражение",
    k_withdrawal: "отзыв согласия", k_destruction: "уничтожение", k_complaint: "жалоба",
    ck_policy: "политика", ck_marketing: "реклама", ck_cookies: "cookies", ck_entrepreneur: "данные ИП",
    recorded: "Записано.", done: "Готово.", what: "Какие данные",
  },
  kk: {
    title: "derbes · өтініштер үстелі", token: "Қызметкер токені", open: "Ашу", signOut: "Шығу",
    dashboard: "Жиынтық", received: "қабылданды", answered: "жауап берілді", weeks12: "— 12 аптада",
    g_open: "ашық", g_overdue: "мерзімі өткен", g_week: "осы аптада мерзімі бітеді",
    g_30: "30 күнде мерзімінде", g_90: "90 күнде мерзімінде",
    g_outbox: "жүйелер оқиғалары: күтуде / жеткізілмеген", g_breaches: "қаралып жатқан бұзушылықтар",
    search: "Пайдаланушыны табу", by: "Бойынша", iin: "ЖСН", phone: "телефон", subjectId: "идентификатор", find: "Табу",
    queue: "Кезек", state: "Күйі", kind: "Түрі", due: "Мерзімі", channel: "Арна",
    f_open: "ашық", f_all: "барлығы", overdueOnly: "тек мерзімі өткендер", dueWeek: "мерзімі 7 күн ішінде",
    lateDuties: "Мерзімі өткен міндеттер", duty: "Міндет", nothingLate: "Мерзімі өткен ештеңе жоқ.",
    breachNotice: "бұзушылық туралы хабарлама", notice: "пайдаланушыға хабарлама",
    receive: "Өтінішті қабылдау", requester: "Кім жүгінеді",
    c_written: "хат немесе курьер", c_email: "электрондық пошта", c_authority: "уәкілетті орган", c_in_app: "қосымшада", c_operator: "оператор",
    r_subject: "пайдаланушының өзі", r_legal_representative: "заңды өкіл", r_authorised_body: "уәкілетті орган", r_operator: "оператор",
    orSubjectId: "немесе пайдаланушы идентификаторы", receivedAt: "Қабылданған уақыты (Алматы уақыты; бос болса — қазір)",
    whichField: "Нені түзету керек", newValue: "Дұрыс мәні", whichChannels: "Арналар",
    letterRef: "Өтініш мәтіні немесе хат нөмірі (шифрланады)", record: "Жазу",
    detail: "Толығырақ", chooseOne: "Кезектен өтінішті таңдаңыз немесе пайдаланушыны табыңыз.",
    noRequests: "Өтініштер жоқ.", signedInAs: "{name} · {role}", needToken: "Қызметкер токенін енгізіңіз.",
    request: "Өтініш", receivedOn: "Қабылданды", routedTo: "Жіберілді", waits: "Күтеді", text: "Мәтін",
    values: "Түзетілген мәндер", steps: "Қадамдар", when: "Қашан", step: "Қадам", who: "Кім", note: "Ескертпе",
    subject: "Пайдаланушы", destroyed: "Жойылды", keptByLaw: "Заң бойынша сақталады",
    verify: "Жеке басы расталды", start: "Жұмысты бастау", complete: "Орындау", refuse: "Бас тарту",
    apply: "Түзетуді қолдану", answerRu: "Жауап (орыс.)", answerKk: "Жауап (қаз.)", answerEn: "Жауап (ағылш.)", certificate: "Жою туралы акт",
    noteOptional: "Ескертпе (міндетті емес)", reasonRequired: "Бас тарту себебі (өтініш берушіге хабарланады)",
    answerRequired: "Берілген жауап (қысқаша)", confirm: "Растау", cancel: "Болдырмау",
    status: "Күйі", registered: "Тіркелген", policyVersion: "Саясат нұсқасы", relationshipEnded: "Қатынастар тоқтатылды",
    categories: "Деректер санаттары (мәндерсіз)", consents: "Келісімдер", channels: "Арналар", requests: "Өтініштер",
    disclosures: "Берулер", holds: "Жоюға тыйым салу", obligations: "Міндеттемелер", audit: "Аудит журналы",
    given: "берілді", marketing: "жарнама", objected: "қарсылықтар", none: "жоқ", recipient: "Алушы",
    action: "Әрекет", decision: "Шешім", notFound: "Табылмады.", user: "пайдаланушы (қосымшада)",
    s_received: "қабылданды", s_identity_verified: "жеке басы расталды", s_in_progress: "орындалуда",
    s_completed: "орындалды", s_refused: "бас тартылды", overdue: "мерзімі өтті",
    st_active: "белсенді", st_blocked: "бұғатталған", st_withdrawn: "келісім кері қайтарылды", st_barred_minor: "өңдеу тоқтатылды (кәмелетке толмаған)", st_destroyed: "жойылған",
    cs_active: "белсенді", cs_withdrawn: "кері қайтарылды", cs_expired: "мерзімі өтті",
    k_access: "деректер көшірмесі", k_information: "өңдеу туралы мәліметтер", k_rectification: "түзету",
    k_blocking: "бұғаттау", k_unblocking: "бұғаттаудан шығару", k_objection: "қарсылық",
    k_withdrawal: "келісімді кері қайтару", k_destruction: "жою", k_complaint: "шағым",
    ck_policy: "саясат", ck_marketing: "жарнама", ck_cookies: "cookies", ck_entrepreneur: "ЖК деректері",
    recorded: "Жазылды.", done: "Дайын.", what: "Қандай деректер",
  },
  en: {
    title: "derbes · rights desk", token: "Staff token", open: "Open", signOut: "Sign out",
    dashboard: "Dashboard", received: "received", answered: "answered", weeks12: "— last 12 weeks",
    g_open: "open", g_overdue: "overdue", g_week: "due this week",
    g_30: "on time, 30 days", g_90: "on time, 90 days",
    g_outbox: "systems' events: pending / dead", g_breaches: "breaches being handled",
    search: "Find a user", by: "By", iin: "IIN", phone: "phone", subjectId: "subject id", find: "Find",
    queue: "Queue", state: "State", kind: "Kind", due: "Due", channel: "Channel",
    f_open: "open", f_all: "all", overdueOnly: "overdue only", dueWeek: "due within 7 days",
    lateDuties: "Late duties", duty: "Duty", nothingLate: "Nothing late.",
    breachNotice: "breach notice", notice: "notice to a user",
    receive: "Receive a request", requester: "Who asks",
    c_written: "letter or courier", c_email: "e-mail", c_authority: "authorised body", c_in_app: "in the app", c_operator: "operator",
    r_subject: "the user", r_legal_representative: "a legal representative", r_authorised_body: "the authorised body", r_operator: "the operator",
    orSubjectId: "or the user's subject id", receivedAt: "Received (Almaty time; now when empty)",
    whichField: "What to correct", newValue: "The correct value", whichChannels: "Channels",
    letterRef: "The request's words or a letter's reference (sealed)", record: "Record",
    detail: "Details", chooseOne: "Choose a request in the queue, or find a user.",
    noRequests: "No requests.", signedInAs: "{name} · {role}", needToken: "Enter a staff token.",
    request: "Request", receivedOn: "Received", routedTo: "Routed to", waits: "Waits for", text: "Text",
    values: "Corrected values", steps: "Steps", when: "When", step: "Step", who: "By", note: "Note",
    subject: "User", destroyed: "Destroyed", keptByLaw: "Kept by law",
    verify: "Identity verified", start: "Start", complete: "Complete", refuse: "Refuse",
    apply: "Apply the correction", answerRu: "Answer (Russian)", answerKk: "Answer (Kazakh)", answerEn: "Answer (English)", certificate: "Destruction certificate",
    noteOptional: "Note (optional)", reasonRequired: "The reason for refusing (told to the requester)",
    answerRequired: "The answer given (in short)", confirm: "Confirm", cancel: "Cancel",
    status: "Status", registered: "Registered", policyVersion: "Policy version", relationshipEnded: "Relationship ended",
    categories: "Categories held (no values)", consents: "Consents", channels: "Channels", requests: "Requests",
    disclosures: "Disclosures", holds: "Legal holds", obligations: "Obligations", audit: "Audit trail",
    given: "given", marketing: "advertising", objected: "objections", none: "none", recipient: "Recipient",
    action: "Action", decision: "Decision", notFound: "Not found.", user: "the user (in the app)",
    s_received: "received", s_identity_verified: "identity verified", s_in_progress: "in progress",
    s_completed: "completed", s_refused: "refused", overdue: "overdue",
    st_active: "active", st_blocked: "blocked", st_withdrawn: "consent withdrawn", st_barred_minor: "processing stopped (a minor)", st_destroyed: "destroyed",
    cs_active: "active", cs_withdrawn: "withdrawn", cs_expired: "expired",
    k_access: "a copy of data", k_information: "information", k_rectification: "rectification",
    k_blocking: "blocking", k_unblocking: "unblocking", k_objection: "objection",
    k_withdrawal: "withdrawal", k_destruction: "destruction", k_complaint: "complaint",
    ck_policy: "policy", ck_marketing: "advertising", ck_cookies: "cookies", ck_entrepreneur: "entrepreneur's data",
    recorded: "Recorded.", done: "Done.", what: "What data",
  },
};
const KINDS = ["access", "information", "rectification", "blocking", "unblocking", "objection", "withdrawal", "destruction", "complaint"];

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("derbes-token") || "";
let lang = sessionStorage.getItem("derbes-desk-lang") || "ru";
let policy = null;
let me = null;
let current = null; // () => redraw what the detail pane shows

function t(key, vars) {
  let s = (T[lang] && T[lang][key]) || T.ru[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", v);
  return s;
}

function name(text) {
  return text ? text[lang] || text.ru || "" : "";
}

function showError(err) {
  $("error").textContent = err ? err : "";
}

function api(method, path, body) {
  return callApi(token(), method, path, body);
}

function can(capability) {
  return me && me.capabilities.includes(capability);
}

function categoryName(id) {
  const c = policy && policy.categories.find((x) => x.id === id);
  return c ? name(c.name) : id;
}

function fieldName(path) {
  const [c, f] = path.split(".");
  const cat = policy && policy.categories.find((x) => x.id === c);
  const field = cat && cat.fields.find((x) => x.id === f);
  return field ? name(cat.name) + ": " + name(field.name) : path;
}

function channelName(id) {
  const c = policy && (policy.channels || []).find((x) => x.id === id);
  return c ? name(c.name) : id;
}

function actorName(step) {
  if (step.actor_name) return step.actor_name;
  if (step.actor.startsWith("subject:")) return t("user");
  return step.actor;
}

function table(head, rows, empty) {
  const tb = el("table");
  const tr = el("tr");
  for (const h of head) {
    const th = el("th", h);
    th.scope = "col";
    tr.append(th);
  }
  const thead = el("thead");
  thead.append(tr);
  const body = el("tbody");
  for (const r of rows) body.append(r);
  if (!rows.length) {
    const e = el("tr");
    const td = el("td", empty || t("none"), "muted");
    td.colSpan = head.length;
    e.append(td);
    body.append(e);
  }
  tb.append(thead, body);
  return tb;
}

function row(cells, onOpen, cls) {
  const tr = el("tr", null, cls || "");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  if (onOpen) {
    tr.classList.add("row");
    tr.tabIndex = 0;
    tr.addEventListener("click", onOpen);
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter") onOpen();
    });
  }
  return tr;
}

function stateCell(state, overdue) {
  const td = el("td");
  td.append(el("span", t("s_" + state), "badge"));
  if (overdue) td.append(" ", el("span", t("overdue"), "badge late"));
  return td;
}

function translate() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  for (const b of document.querySelectorAll("nav.lang button")) b.setAttribute("aria-pressed", b.dataset.lang === lang ? "true" : "false");
  const kf = $("kind-filter");
  const keep = kf.value;
  kf.replaceChildren(Object.assign(el("option", t("f_all")), { value: "" }), ...KINDS.map((k) => Object.assign(el("option", t("k_" + k)), { value: k })));
  kf.value = keep;
  const nk = $("new-kind");
  const keepNew = nk.value || "access";
  nk.replaceChildren(...KINDS.map((k) => Object.assign(el("option", t("k_" + k)), { value: k })));
  nk.value = keepNew;
  if (me) $("who").textContent = t("signedInAs", { name: me.name, role: roleName(me.role) });
}

function roleName(id) {
  const r = policy && policy.roles.find((x) => x.id === id);
  return r ? name(r.name) : id;
}

async function loadDashboard() {
  const s = await api("GET", "/api/v1/requests/summary");
  const pct = (o) => (o.answered ? Math.round((100 * o.on_time) / o.answered) + "% (" + o.on_time + "/" + o.answered + ")" : "—");
  const figures = [
    [t("g_open"), s.open],
    [t("g_overdue"), s.overdue],
    [t("g_week"), s.due_this_week],
    [t("g_30"), pct(s.last_30_days)],
    [t("g_90"), pct(s.last_90_days)],
  ];
  // The connected systems' dead events and the open breaches, where the role sees them.
  try {
    const dead = await api("GET", "/api/v1/outbox?state=dead&limit=10000");
    const pending = await api("GET", "/api/v1/outbox?state=pending&limit=10000");
    figures.push([t("g_outbox"), pending.length + " / " + dead.length]);
  } catch (e) {
    /* not this role's */
  }
  if (can("manage_breaches")) {
    const open = (await api("GET", "/api/v1/breaches?limit=10000")).filter((b) => b.state !== "closed");
    figures.push([t("g_breaches"), open.length]);
  }
  $("figures").replaceChildren(
    ...figures.map(([label, v]) => {
      const li = el("li");
      li.append(el("strong", v), el("span", label, "muted"));
      return li;
    }),
  );
  const max = Math.max(1, ...s.weeks.map((w) => Math.max(w.received, w.answered)));
  const chart = $("chart");
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", s.weeks.map((w) => `${w.week}: ${w.received} ${t("received")}, ${w.answered} ${t("answered")}`).join("; "));
  chart.replaceChildren(
    ...s.weeks.map((w) => {
      const d = el("div");
      const r = el("span");
      r.style.height = (100 * w.received) / max + "%";
      const a = el("span", null, "ans");
      a.style.height = (100 * w.answered) / max + "%";
      d.title = `${w.week}: ${w.received} / ${w.answered}`;
      d.append(r, a);
      return d;
    }),
  );
}

async function loadDuties() {
  const rows = [];
  if (can("manage_breaches")) {
    for (const b of await api("GET", "/api/v1/breaches?overdue=true&limit=500")) rows.push(row([t("breachNotice"), b.state, almaty(b.notice_due)], null, "overdue"));
  }
  try {
    for (const n of await api("GET", "/api/v1/notices?overdue=true&limit=500")) rows.push(row([t("notice"), n.kind, almaty(n.due_at)], null, "overdue"));
  } catch (e) {
    /* not this role's */
  }
  $("duties").replaceChildren(...(rows.length ? rows : [row([el("td", t("nothingLate"), "muted")])]));
}

async function loadQueue() {
  showError();
  const q = new URLSearchParams();
  const st = $("state").value;
  if (st === "open") q.set("open", "true");
  else if (st) q.set("state", st);
  if ($("kind-filter").value) q.set("kind", $("kind-filter").value);
  if ($("overdue").checked) q.set("overdue", "true");
  if ($("week").checked) q.set("due_before", new Date(Date.now() + 7 * 86400000).toISOString());
  q.set("limit", "500");
  try {
    const list = await api("GET", "/api/v1/requests?" + q);
    const rows = list.map((r) =>
      row([t("k_" + r.kind), stateCell(r.state, r.overdue), almaty(r.due), t("c_" + r.channel)], () => showRequest(r.request_id), r.overdue ? "overdue" : ""),
    );
    $("queue").replaceChildren(...(rows.length ? rows : [row([Object.assign(el("td", t("noRequests"), "muted"), { colSpan: 4 })])]));
  } catch (e) {
    showError(e.message);
  }
}

async function refreshAll() {
  await Promise.all([loadQueue(), loadDashboard().catch((e) => showError(e.message)), loadDuties().catch(() => {})]);
}

/** A small form in the detail pane: a text (required or not), then the step. */
function stepForm(label, required, onConfirm) {
  const box = el("div", null, "panel");
  const id = "step-text";
  const lab = el("label", label);
  lab.htmlFor = id;
  const area = el("textarea");
  area.id = id;
  area.rows = 3;
  area.maxLength = 2000;
  const ok = el("button", t("confirm"), "primary");
  ok.type = "button";
  const no = el("button", t("cancel"));
  no.type = "button";
  no.addEventListener("click", () => box.remove());
  ok.addEventListener("click", async () => {
    const text = area.value.trim();
    if (required && !text) {
      area.focus();
      return;
    }
    showError();
    try {
      await onConfirm(text);
    } catch (e) {
      showError(e.message);
    }
  });
  box.append(lab, area, ok, no);
  return box;
}

function button(label, onClick, cls) {
  const b = el("button", label, cls || "");
  b.type = "button";
  b.addEventListener("click", async () => {
    showError();
    try {
      await onClick(b);
    } catch (e) {
      showError(e.message);
    }
  });
  return b;
}

async function act(id, action, text) {
  const body = text ? { action, reason: text } : { action };
  await api("POST", `/api/v1/requests/${encodeURIComponent(id)}/actions`, body);
  await showRequest(id);
  await refreshAll();
}

/** A page the API writes (an answer, a certificate) opened in a new tab. */
async function openPage(id, what, l) {
  const res = await fetch(`/api/v1/requests/${encodeURIComponent(id)}/${what}?format=html&lang=${l}`, { headers: { Authorization: "Bearer " + token() } });
  if (!res.ok) {
    const e = await res.json();
    throw new Error(`${e.error.code}: ${e.error.message}`);
  }
  const blob = new Blob([await res.text()], { type: "text/html" });
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

function factCell(node) {
  const td = el("td");
  td.append(node);
  return td;
}

async function showRequest(id) {
  showError();
  current = () => showRequest(id);
  const r = await api("GET", `/api/v1/requests/${encodeURIComponent(id)}`);
  const d = $("detail");
  d.className = "";
  d.replaceChildren();
  d.append(el("h3", t("request") + ": " + t("k_" + r.kind)));
  const subj = r.subject_id ? button(r.subject_id, () => showSubject(r.subject_id)) : el("span", "—");
  const tb = el("table");
  const pairs = [
    [t("state"), [t("s_" + r.state), r.state_reason, said(r.state_said, lang)].filter(Boolean).join(" — ")],
    [t("due"), almaty(r.due) + (r.overdue ? " — " + t("overdue") : "")],
    [t("receivedOn"), almaty(r.received_at)],
    [t("channel"), t("c_" + r.channel)],
    [t("requester"), t("r_" + r.requester)],
    [t("subject"), subj],
    [t("routedTo"), (r.routed_to || []).map(roleName).join(", ") || "—"],
    [t("waits"), (r.waiting || []).join(", ") || "—"],
    [t("text"), r.text || "—"],
  ];
  if (r.details && r.details.channels) pairs.push([t("whichChannels"), r.details.channels.map(channelName).join(", ")]);
  if (r.values) pairs.push([t("values"), Object.entries(r.values).map(([f, v]) => fieldName(f) + " → " + v).join("; ")]);
  if (r.outcome) {
    pairs.push([t("destroyed"), r.outcome.destroyed.map(categoryName).join(", ") || "—"]);
    pairs.push([t("keptByLaw"), r.outcome.kept_by_law.map((k) => `${categoryName(k.category)} (${k.purpose}) → ${almaty(k.until)}`).join("; ") || "—"]);
  }
  for (const [k, v] of pairs) {
    const tr = el("tr");
    const th = el("th", k);
    th.scope = "row";
    tr.append(th, v instanceof Node ? factCell(v) : el("td", v));
    tb.append(tr);
  }
  d.append(tb);

  const actions = el("div");
  const forms = el("div");
  const open = !["completed", "refused"].includes(r.state);
  const show = (f) => forms.replaceChildren(f);
  if (r.state === "received") actions.append(button(t("verify"), () => show(stepForm(t("noteOptional"), false, (x) => act(id, "verify", x))), "primary"));
  if (r.state === "identity_verified") actions.append(button(t("start"), () => act(id, "start")));
  if (r.kind === "rectification" && ["identity_verified", "in_progress"].includes(r.state)) {
    actions.append(button(t("apply"), () => show(rectifyForm(r)), "primary"));
  } else if (["identity_verified", "in_progress"].includes(r.state)) {
    const needs = r.kind === "complaint";
    actions.append(button(t("complete"), () => show(stepForm(needs ? t("answerRequired") : t("noteOptional"), needs, (x) => act(id, "complete", x))), "primary"));
  }
  if (open) actions.append(button(t("refuse"), () => show(stepForm(t("reasonRequired"), true, (x) => act(id, "refuse", x))), "danger"));
  if (["access", "information"].includes(r.kind) && ["identity_verified", "in_progress", "completed"].includes(r.state)) {
    actions.append(
      button(t("answerRu"), () => openPage(id, "export", "ru")),
      button(t("answerKk"), () => openPage(id, "export", "kk")),
      button(t("answerEn"), () => openPage(id, "export", "en")),
    );
  }
  if (["withdrawal", "destruction"].includes(r.kind) && r.state === "completed") {
    actions.append(
      button(t("certificate") + " (ru)", () => openPage(id, "certificate", "ru")),
      button(t("certificate") + " (kk)", () => openPage(id, "certificate", "kk")),
      button(t("certificate") + " (en)", () => openPage(id, "certificate", "en")),
    );
  }
  d.append(actions, forms);
  const steps = (r.steps || []).map((s) => row([almaty(s.at), t("s_" + s.to), actorName(s), [s.reason, said(s.said, lang)].filter(Boolean).join(" — ")]));
  d.append(el("h3", t("steps")), table([t("when"), t("step"), t("who"), t("note")], steps));
}

/** The correction's values, as the requester gave them, to apply or amend. */
function rectifyForm(r) {
  const box = el("div", null, "panel");
  const inputs = [];
  for (const [field, value] of Object.entries(r.values || {})) {
    const id = "rect-" + field.replace(/\W/g, "-");
    const lab = el("label", fieldName(field));
    lab.htmlFor = id;
    const input = el("input");
    input.id = id;
    input.value = String(value);
    inputs.push([field, input]);
    box.append(lab, input);
  }
  box.append(
    button(t("confirm"), async () => {
      const fields = {};
      for (const [f, input] of inputs) fields[f] = input.value;
      await api("POST", `/api/v1/requests/${encodeURIComponent(r.request_id)}/rectification`, { fields });
      await showRequest(r.request_id);
      await refreshAll();
    }, "primary"),
  );
  return box;
}

async function showSubject(id) {
  showError();
  current = () => showSubject(id);
  const s = await api("GET", `/api/v1/subjects/${encodeURIComponent(id)}/overview`);
  const d = $("detail");
  d.className = "";
  d.replaceChildren(el("h3", t("subject") + ": " + s.subject_id));
  const tb = el("table");
  for (const [k, v] of [
    [t("status"), t("st_" + s.status)],
    [t("registered"), almaty(s.registered_at)],
    [t("policyVersion"), s.policy_version],
    [t("relationshipEnded"), s.relationship_ended_at ? almaty(s.relationship_ended_at) : "—"],
    [t("categories"), s.categories.map(categoryName).join(", ") || "—"],
  ]) {
    const tr = el("tr");
    const th = el("th", k);
    th.scope = "row";
    tr.append(th, el("td", v));
    tb.append(tr);
  }
  d.append(tb);
  d.append(
    el("h3", t("requests")),
    table(
      [t("kind"), t("state"), t("due"), t("channel")],
      s.requests.map((r) => row([t("k_" + r.kind), stateCell(r.state, r.overdue), almaty(r.due), t("c_" + r.channel)], () => showRequest(r.request_id), r.overdue ? "overdue" : "")),
    ),
    el("h3", t("consents")),
    table(
      [t("kind"), t("state"), t("given")],
      s.consents.map((c) => row([t("ck_" + c.kind) + (c.channel ? " · " + channelName(c.channel) : ""), t("cs_" + c.state), almaty(c.given_at)])),
    ),
    el("h3", t("channels")),
    table(
      [t("channel"), t("marketing"), t("objected")],
      s.channels.map((c) => row([channelName(c.channel), c.marketing ? "✓" : "—", c.objected.join(", ") || "—"])),
    ),
    el("h3", t("disclosures")),
    table(
      [t("when"), t("recipient"), t("what")],
      s.disclosures.map((x) => row([almaty(x.at), x.recipient, x.categories.map(categoryName).join(", ")])),
    ),
    el("h3", t("holds")),
    table([t("when"), t("text")], s.holds.map((h) => row([almaty(h.placed_at), h.reason + (h.released_at ? " (" + almaty(h.released_at) + ")" : "")]))),
    el("h3", t("obligations")),
    table([t("kind"), t("text"), t("when")], s.obligations.map((o) => row([o.kind, o.reference, o.closed_at ? almaty(o.closed_at) : "—"]))),
  );
  if (can("read_audit")) {
    const log = await api("GET", `/api/v1/audit?subject_id=${encodeURIComponent(id)}&limit=200`);
    d.append(el("h3", t("audit")), table([t("when"), t("action"), t("who"), t("decision")], log.records.map((a) => row([almaty(a.at), a.action, a.actor, a.decision]))));
  }
}

async function search(ev) {
  ev.preventDefault();
  showError();
  const by = $("search-by").value;
  const text = $("search-text").value.trim();
  if (!text) return;
  try {
    if (by === "subject_id") return await showSubject(text);
    const found = await api("POST", "/api/v1/subjects/lookup", { [by]: text });
    await showSubject(found.subject_id);
  } catch (e) {
    showError(e.status === 404 ? t("notFound") : e.message);
  }
}

function showNewKind() {
  const k = $("new-kind").value;
  $("new-rect").hidden = k !== "rectification";
  $("new-obj").hidden = k !== "objection";
}

async function receive(ev) {
  ev.preventDefault();
  showError();
  const f = new FormData($("new"));
  const kind = $("new-kind").value;
  const body = { kind, channel: f.get("channel"), requester: f.get("requester") };
  if (f.get("subject_id")) body.subject_id = f.get("subject_id").trim();
  else if (f.get("iin")) body.identification = { iin: f.get("iin").trim() };
  if (f.get("received_at")) body.received_at = f.get("received_at") + ":00+05:00";
  if (f.get("text")) body.text = f.get("text");
  if (kind === "rectification" && $("new-rect-value").value.trim()) body.values = { [$("new-rect-field").value]: $("new-rect-value").value.trim() };
  if (kind === "objection") {
    const channels = [...document.querySelectorAll("#new-obj-channels input:checked")].map((b) => b.value);
    if (channels.length) body.details = { channels };
  }
  try {
    const r = await api("POST", "/api/v1/requests", body);
    $("new").reset();
    showNewKind();
    await refreshAll();
    await showRequest(r.request_id);
    showError();
  } catch (e) {
    showError(e.message);
  }
}

function fillPolicyControls() {
  const sel = $("new-rect-field");
  sel.replaceChildren();
  for (const cat of policy.categories) {
    if (!cat.personal || cat.technical) continue;
    for (const f of cat.fields) sel.append(Object.assign(el("option", name(cat.name) + ": " + name(f.name)), { value: cat.id + "." + f.id }));
  }
  const oc = $("new-obj-channels");
  oc.replaceChildren();
  for (const c of policy.channels || []) {
    const box = el("input");
    box.type = "checkbox";
    box.value = c.id;
    box.id = "new-obj-" + c.id;
    const lab = el("label", null, "inline");
    lab.htmlFor = box.id;
    lab.append(box, " " + name(c.name));
    oc.append(lab);
  }
}

async function signIn() {
  try {
    if (!policy) {
      policy = (await (await fetch("/api/v1/policy")).json()).policy;
      fillPolicyControls();
    }
    me = await api("GET", "/api/v1/whoami");
    // The language the officer chose, kept with their token, wins over this tab's.
    if (me.lang && T[me.lang]) {
      lang = me.lang;
      sessionStorage.setItem("derbes-desk-lang", lang);
      fillPolicyControls();
    }
  } catch (e) {
    sessionStorage.removeItem("derbes-token");
    showError(e.message);
    return;
  }
  $("signin-form").hidden = true;
  $("who").hidden = false;
  $("signout").hidden = false;
  translate();
  await refreshAll();
}

async function setLang(l) {
  if (!T[l]) return;
  lang = l;
  sessionStorage.setItem("derbes-desk-lang", l);
  translate();
  if (policy) fillPolicyControls();
  if (me) {
    // Kept with the officer's token: the next sign-in, from any browser, speaks it.
    try {
      me = await api("PUT", "/api/v1/whoami/lang", { lang: l });
    } catch (e) {
      showError(e.message);
    }
    translate();
    refreshAll();
    if (current) current().catch((e) => showError(e.message));
  }
}

$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token").value.trim();
  if (!v) return showError(t("needToken"));
  sessionStorage.setItem("derbes-token", v);
  $("token").value = "";
  signIn();
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem("derbes-token");
  location.reload();
});
for (const b of document.querySelectorAll("nav.lang button")) b.addEventListener("click", () => setLang(b.dataset.lang));
for (const id of ["state", "kind-filter", "overdue", "week"]) $(id).addEventListener("change", loadQueue);
$("search-form").addEventListener("submit", search);
$("new").addEventListener("submit", receive);
$("new-kind").addEventListener("change", showNewKind);
const initial = new URLSearchParams(location.search).get("lang");
if (initial && T[initial]) lang = initial;
translate();
showNewKind();
if (token()) signIn();
