// The privacy center in a real browser: the system's Chromium driven by
// playwright-core, against the real binary on a fresh data directory. A
// user opens /me from the app in Kazakh, Russian and English; sees what is
// kept; turns advertising by SMS off; files a correction; gets, prints and
// downloads a copy of their data; signs out. Every page state passes axe-core
// with no serious or critical violation. Screenshots go to target/browser/
// (on failure, the page as it was).
//
//   node tests/browser/center.mjs            (DERBES_BIN, CHROMIUM override)

import { Harness, check, readFileSync } from "./harness.mjs";

const TITLES = { kk: "Менің деректерім", ru: "Мои данные", en: "My data" };

Harness.run(async (h) => {
  const base = await h.start();
  const backend = h.token("backend_service");
  const user = await h.call(backend, "POST", "/api/v1/subjects", {
    fields: {
      "identity.iin": "871008401427", "identity.rk_citizen": true,
      "full_name.surname": "Оспанова", "full_name.first_name": "Әсел", "contact.phone": "+77015550101",
    },
    consents: [{ kind: "policy" }, { kind: "marketing", channel: "sms" }],
  });
  const session = await h.call(backend, "POST", `/api/v1/subjects/${user.subject_id}/sessions`, { minutes: 30 });
  // A phone's screen.
  const context = await h.browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });

  for (const lang of ["kk", "ru", "en"]) {
    await h.step(`the center opens in ${lang}`, async () => {
      h.page = await context.newPage();
      const page = h.page;
      await page.goto(`${base}/me?lang=${lang}#token=${session.token}`);
      await page.waitForSelector("#center:not([hidden])");
      check((await page.textContent("h1")) === TITLES[lang], `the title in ${lang}`);
      check((await page.getAttribute("html", "lang")) === lang, `<html lang="${lang}">`);
      check(!page.url().includes("dbm_"), "the token leaves the address bar");
      check((await page.locator("#categories li").count()) >= 3, "the categories kept are listed");
      await h.accessible(`center ${lang}`);
      await h.screenshot(`center-${lang}`);
      if (lang !== "en") await page.close();
    });
  }

  const page = () => h.page;
  await h.step("advertising by SMS is turned off", async () => {
    check(await page().isChecked("#ads-sms"), "SMS advertising on at first");
    await page().click("#ads-sms");
    await page().waitForFunction(() => document.getElementById("status").textContent === "Saved.");
    await page().reload();
    await page().waitForSelector("#center:not([hidden])");
    check(!(await page().isChecked("#ads-sms")), "SMS advertising off after a reload");
  });

  await h.step("a correction is filed with the right value", async () => {
    await page().selectOption("#kind", "rectification");
    await page().selectOption("#rect-field", "full_name.first_name");
    await page().fill("#rect-value", "Асель");
    await page().fill("#text", "spelt as in my ID card");
    await page().click("#request-form button[type=submit]");
    await page().waitForFunction(() => document.getElementById("status").textContent === "Your request was sent.");
    const rows = await page().locator("#requests tr").allTextContents();
    check(rows.some((r) => r.includes("Correct my data") && r.includes("identity verified")), "the request in my list");
    await h.accessible("center after a request");
  });

  await h.step("a request without a value is refused on the page", async () => {
    await page().selectOption("#kind", "rectification");
    await page().fill("#rect-value", "");
    await page().click("#request-form button[type=submit]");
    check((await page().textContent("#status")) === "Give the correct value.", "the missing value named");
  });

  await h.step("a copy of my data: read, printed, downloaded", async () => {
    await page().click("#get-copy");
    await page().waitForSelector("#copy-out:not([hidden])");
    const table = await page().textContent("#copy-fields");
    check(table.includes("871008401427"), "the IIN in the copy");
    await page().emulateMedia({ media: "print" });
    check(!(await page().isVisible("#request-form")), "the form is not printed");
    check(await page().isVisible("#copy-fields"), "the copy is printed");
    await h.screenshot("center-print");
    await page().emulateMedia({ media: "screen" });
    const [download] = await Promise.all([page().waitForEvent("download"), page().click("#download")]);
    const copy = JSON.parse(readFileSync(await download.path(), "utf8"));
    check(copy.kind === "access" && copy.subject.subject_id === user.subject_id, "the downloaded copy is mine");
    await h.accessible("center with a copy");
  });

  await h.step("signing out ends the session", async () => {
    await page().click("#sign-out");
    await page().waitForSelector("#signin:not([hidden])");
    const res = await fetch(base + "/api/v1/me", { headers: { Authorization: "Bearer " + session.token } });
    check(res.status === 401, "the session is dead after signing out");
    await h.accessible("center signed out");
  });

  await h.step("without a session the page says where to open it", async () => {
    const p = await context.newPage();
    await p.goto(`${base}/me?lang=kk`);
    await p.waitForSelector("#signin:not([hidden])");
    check((await p.textContent("#signin h2")) === "Бұл бетті қосымшадан ашыңыз", "the Kazakh hint");
    await p.close();
  });
});
