// The privacy center in a real browser: the system's Chromium driven by
// playwright-core, against the real binary on a fresh data directory. A
// user opens /me from the app in Kazakh, Russian and English; sees what is
// kept; turns advertising by SMS off; files a correction; gets, prints and
// downloads a copy of their data; signs out. Every page state passes axe-core
// with no serious or critical violation. Screenshots go to target/browser/
// (on failure, the page as it was).
//
//   node tests/browser/center.mjs            (DERBES_BIN, CHROMIUM override)

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.DERBES_BIN || join(root, "target", "debug", "derbes");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = join(root, "target", "browser");
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const work = mkdtempSync(join(tmpdir(), "derbes-browser-"));
const data = join(work, "data");
let server;
let browser;
let page;
let failures = 0;

function cli(...args) {
  return JSON.parse(execFileSync(bin, [...args, "--data-dir", data, "--json"], { encoding: "utf8" }));
}

async function start() {
  cli("migrate");
  const backend = cli("staff", "add", "--name", "app backend", "--role", "backend_service").token;
  server = spawn(bin, ["serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--purge-every", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const base = await new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error("derbes did not start:\n" + log)), 20000);
    const look = (chunk) => {
      log += chunk;
      const m = log.match(/address=(http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    server.stdout.on("data", look);
    server.stderr.on("data", look);
    server.on("exit", (code) => reject(new Error("derbes exited " + code + ":\n" + log)));
  });
  return { base, backend };
}

async function call(base, token, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const v = await res.json();
  if (!res.ok) throw new Error(method + " " + path + ": " + res.status + " " + JSON.stringify(v));
  return v;
}

function check(ok, what) {
  if (!ok) throw new Error("expected: " + what);
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  check(result.passes === undefined || Array.isArray(result.violations), "axe ran");
  console.log(`  axe ${label}: ${result.violations.length} violation(s)`);
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result.violations) {
    console.log(`  axe ${label}: ${v.impact} ${v.id} (${v.nodes.length}) ${v.help}`);
  }
  check(bad.length === 0, `${label}: no serious or critical accessibility violation`);
}

async function step(name, body) {
  try {
    await body();
    console.log("ok   " + name);
  } catch (e) {
    failures += 1;
    console.log("FAIL " + name + "\n     " + String(e.message || e).split("\n").join("\n     "));
    if (page) {
      const file = join(shots, "FAILED-" + name.replace(/[^a-z0-9]+/gi, "-") + ".png");
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.log("     screenshot: " + file);
    }
  }
}

const TITLES = { kk: "Менің деректерім", ru: "Мои данные", en: "My data" };

async function main() {
  const { base, backend } = await start();
  const user = await call(base, backend, "POST", "/api/v1/subjects", {
    fields: {
      "identity.iin": "871008401427", "identity.rk_citizen": true,
      "full_name.surname": "Оспанова", "full_name.first_name": "Әсел", "contact.phone": "+77015550101",
    },
    consents: [{ kind: "policy" }, { kind: "marketing", channel: "sms" }],
  });
  const session = await call(base, backend, "POST", `/api/v1/subjects/${user.subject_id}/sessions`, { minutes: 30 });
  browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  // A phone's screen.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });

  for (const lang of ["kk", "ru", "en"]) {
    await step(`the center opens in ${lang}`, async () => {
      page = await context.newPage();
      await page.goto(`${base}/me?lang=${lang}#token=${session.token}`);
      await page.waitForSelector("#center:not([hidden])");
      check((await page.textContent("h1")) === TITLES[lang], `the title in ${lang}`);
      check((await page.getAttribute("html", "lang")) === lang, `<html lang="${lang}">`);
      check(!page.url().includes("dbm_"), "the token leaves the address bar");
      check((await page.locator("#categories li").count()) >= 3, "the categories kept are listed");
      await accessible(`center ${lang}`);
      await page.screenshot({ path: join(shots, `center-${lang}.png`), fullPage: true });
      if (lang !== "en") await page.close();
    });
  }

  await step("advertising by SMS is turned off", async () => {
    check(await page.isChecked("#ads-sms"), "SMS advertising on at first");
    await page.click("#ads-sms");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Saved.");
    await page.reload();
    await page.waitForSelector("#center:not([hidden])");
    check(!(await page.isChecked("#ads-sms")), "SMS advertising off after a reload");
  });

  await step("a correction is filed with the right value", async () => {
    await page.selectOption("#kind", "rectification");
    await page.selectOption("#rect-field", "full_name.first_name");
    await page.fill("#rect-value", "Асель");
    await page.fill("#text", "spelt as in my ID card");
    await page.click("#request-form button[type=submit]");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Your request was sent.");
    const rows = await page.locator("#requests tr").allTextContents();
    check(rows.some((r) => r.includes("Correct my data") && r.includes("identity verified")), "the request in my list");
    await accessible("center after a request");
  });

  await step("a request without a value is refused on the page", async () => {
    await page.selectOption("#kind", "rectification");
    await page.fill("#rect-value", "");
    await page.click("#request-form button[type=submit]");
    check((await page.textContent("#status")) === "Give the correct value.", "the missing value named");
  });

  await step("a copy of my data: read, printed, downloaded", async () => {
    await page.click("#get-copy");
    await page.waitForSelector("#copy-out:not([hidden])");
    const table = await page.textContent("#copy-fields");
    check(table.includes("871008401427"), "the IIN in the copy");
    await page.emulateMedia({ media: "print" });
    check(!(await page.isVisible("#request-form")), "the form is not printed");
    check(await page.isVisible("#copy-fields"), "the copy is printed");
    await page.screenshot({ path: join(shots, "center-print.png"), fullPage: true });
    await page.emulateMedia({ media: "screen" });
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const copy = JSON.parse(readFileSync(await download.path(), "utf8"));
    check(copy.kind === "access" && copy.subject.subject_id === user.subject_id, "the downloaded copy is mine");
    await accessible("center with a copy");
  });

  await step("signing out ends the session", async () => {
    await page.click("#sign-out");
    await page.waitForSelector("#signin:not([hidden])");
    const res = await fetch(base + "/api/v1/me", { headers: { Authorization: "Bearer " + session.token } });
    check(res.status === 401, "the session is dead after signing out");
    await accessible("center signed out");
  });

  await step("without a session the page says where to open it", async () => {
    const p = await context.newPage();
    await p.goto(`${base}/me?lang=kk`);
    await p.waitForSelector("#signin:not([hidden])");
    check((await p.textContent("#signin h2")) === "Бұл бетті қосымшадан ашыңыз", "the Kazakh hint");
    await p.close();
  });
}

try {
  await main();
} catch (e) {
  failures += 1;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
console.log(failures ? `${failures} failure(s); screenshots in target/browser/` : "browser tests passed");
process.exit(failures ? 1 : 0);
