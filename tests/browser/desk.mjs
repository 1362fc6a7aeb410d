// The rights desk in a real browser: the data-protection officer signs in
// with a token, sees who they are signed in as and the dashboard, finds a
// user by IIN and opens their page, records a letter, verifies and
// completes it with the desk's own forms, applies a correction the user
// asked for in the app; in Kazakh, Russian and English, each state passing
// axe-core with no serious or critical violation.
//
//   node tests/browser/desk.mjs            (DERBES_BIN, CHROMIUM override)

import { Harness, check } from "./harness.mjs";

const RECTIFICATION = { kk: "түзету", ru: "исправление" };
const CORRECTED = { kk: "түзетілді: full_name.first_name", ru: "исправлено: full_name.first_name" };
const TITLES = { kk: "derbes · өтініштер үстелі", ru: "derbes · стол обращений", en: "derbes · rights desk" };

Harness.run(async (h) => {
  const base = await h.start();
  const backend = h.token("backend_service");
  const dpo = h.token("data_protection_officer");
  const iin = "871008401427";
  const user = await h.call(backend, "POST", "/api/v1/subjects", {
    fields: {
      "identity.iin": iin, "identity.rk_citizen": true,
      "full_name.surname": "Бекова", "full_name.first_name": "Дина", "contact.phone": "+77015550202",
    },
    consents: [{ kind: "policy" }],
  });
  // The user asks, in the app, for a correction.
  const session = await h.call(backend, "POST", `/api/v1/subjects/${user.subject_id}/sessions`, {});
  await h.call(session.token, "POST", "/api/v1/me/requests", {
    kind: "rectification", values: { "full_name.first_name": "Динара" },
  });
  const context = await h.browser.newContext({ viewport: { width: 1280, height: 900 } });
  h.page = await context.newPage();
  const page = h.page;
  const detail = () => page.textContent("#detail");

  await h.step("the officer signs in", async () => {
    await page.goto(`${base}/desk?lang=en`);
    await h.accessible("desk signed out");
    await page.fill("#token", dpo);
    await page.click("#connect");
    await page.waitForSelector("#who:not([hidden])");
    const who = await page.textContent("#who");
    check(who.includes("Test data_protection_officer") && who.includes("Data-protection officer"), `signed in as: ${who}`);
    await page.waitForFunction(() => document.querySelectorAll("#figures li").length === 7);
    const figures = await page.textContent("#figures");
    check(figures.includes("open") && figures.includes("breaches being handled") && figures.includes("pending / dead"), `the dashboard's figures: ${figures}`);
    check((await page.locator("#queue tr.row").count()) === 1, "the open queue holds the user's correction");
  });

  await h.step("a user is found by IIN and their page opened", async () => {
    await page.selectOption("#search-by", "iin");
    await page.fill("#search-text", iin);
    await page.click("#search-form button[type=submit]");
    await page.waitForFunction(() => document.getElementById("detail").textContent.includes("Audit trail"));
    const text = await detail();
    check(text.includes(user.subject_id), "the subject's id");
    check(text.includes("active"), "the status");
    check(!text.includes(iin), "no value of their data on the page");
    check(text.includes("Audit trail"), "the audit trail");
    await h.accessible("desk subject page");
    await h.screenshot("desk-subject-en");
  });

  await h.step("a letter is recorded, verified and completed", async () => {
    await page.selectOption("#new-kind", "information");
    await page.selectOption("#new [name=channel]", "written");
    await page.fill("#new-iin", iin);
    await page.fill("#new-text", "registered letter RR987654321KZ");
    await page.click("#new button[type=submit]");
    await page.waitForFunction(() => document.getElementById("detail").textContent.includes("letter or courier"));
    check((await detail()).includes("RR987654321KZ"), "the letter's reference, opened for the desk");
    await page.click("#detail button:has-text('Identity verified')");
    await page.fill("#step-text", "passport checked at the office");
    await page.click("#detail button:has-text('Confirm')");
    await page.waitForFunction(() => document.getElementById("detail").textContent.includes("passport checked"));
    await page.click("#detail button:has-text('Complete')");
    await page.click("#detail button:has-text('Confirm')");
    await page.waitForFunction(() => /State\s*completed/.test(document.getElementById("detail").textContent));
    check((await detail()).includes("Test data_protection_officer"), "the steps name the officer");
    check(/\(UTC\+05:00\)/.test(await detail()), "times in Almaty with the offset");
    await h.accessible("desk request");
  });

  await h.step("the user's correction is applied from the desk", async () => {
    await page.selectOption("#state", "open");
    await page.click("#queue tr.row");
    await page.waitForFunction(() => document.getElementById("detail").textContent.includes("Corrected values"));
    check((await detail()).includes("Динара"), "the value the user gave");
    await page.click("#detail button:has-text('Apply the correction')");
    await page.click("#detail .panel button:has-text('Confirm')");
    await page.waitForFunction(() => /State\s*completed/.test(document.getElementById("detail").textContent));
    await page.waitForFunction(() => document.querySelectorAll("#queue tr.row").length === 0);
    check((await detail()).includes("identity verified by the app's sign-in"), "derbes' own step, worded");
    check((await detail()).includes("corrected: full_name.first_name"), "the fields corrected, named");
  });

  for (const lang of ["kk", "ru"]) {
    await h.step(`the desk speaks ${lang}`, async () => {
      await page.click(`nav.lang button[data-lang=${lang}]`);
      check((await page.textContent("h1")) === TITLES[lang], `the title in ${lang}`);
      check((await page.getAttribute("html", "lang")) === lang, `<html lang="${lang}">`);
      await page.selectOption("#state", "");
      await page.waitForSelector("#queue tr.row");
      await page.click(`#queue tr.row:has-text('${RECTIFICATION[lang]}')`);
      await page.waitForFunction((w) => document.getElementById("detail").textContent.includes(w), CORRECTED[lang]);
      check(!(await detail()).includes("sign-in"), `derbes' own steps in ${lang}, not in English`);
      await h.accessible(`desk ${lang}`);
      await h.screenshot(`desk-${lang}`);
    });
  }

  await h.step("the officer's language is kept with them, not with the tab", async () => {
    // A new browser (nothing in its storage), asked for English: the officer
    // last chose Russian, and the desk speaks it once they sign in.
    const other = await (await h.browser.newContext()).newPage();
    await other.goto(`${base}/desk?lang=en`);
    check((await other.textContent("h1")) === "derbes · rights desk", "signed out: the page's own choice");
    await other.fill("#token", dpo);
    await other.click("#connect");
    await other.waitForSelector("#who:not([hidden])");
    check((await other.textContent("h1")) === TITLES.ru, "signed in: the officer's language");
    check((await other.getAttribute("html", "lang")) === "ru", '<html lang="ru">');
    await other.close();
  });
});
