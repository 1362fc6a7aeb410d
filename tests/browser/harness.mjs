// What the browser tests share: the real binary on a fresh data directory,
// the system's Chromium, axe-core, steps that screenshot a failure.

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
export const shots = join(root, "target", "browser");
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export class Harness {
  constructor() {
    this.work = mkdtempSync(join(tmpdir(), "derbes-browser-"));
    this.data = join(this.work, "data");
    this.failures = 0;
    this.page = null;
  }

  cli(...args) {
    return JSON.parse(execFileSync(bin, [...args, "--data-dir", this.data, "--json"], { encoding: "utf8" }));
  }

  token(role) {
    return this.cli("staff", "add", "--name", `Test ${role}`, "--role", role).token;
  }

  /** Migrate, start `derbes serve` on a free port; the base URL. */
  async start() {
    this.cli("migrate");
    this.server = spawn(bin, ["serve", "--data-dir", this.data, "--listen", "127.0.0.1:0", "--purge-every", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.base = await new Promise((resolve, reject) => {
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
      this.server.stdout.on("data", look);
      this.server.stderr.on("data", look);
      this.server.on("exit", (code) => reject(new Error("derbes exited " + code + ":\n" + log)));
    });
    this.browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
    return this.base;
  }

  async call(token, method, path, body) {
    const res = await fetch(this.base + path, {
      method,
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const v = await res.json();
    if (!res.ok) throw new Error(method + " " + path + ": " + res.status + " " + JSON.stringify(v));
    return v;
  }

  /** axe-core on the page as it is: no serious or critical violation. */
  async accessible(label) {
    await this.page.evaluate(axeSource);
    // eslint-disable-next-line no-undef
    const result = await this.page.evaluate(async () => axe.run(document, { resultTypes: ["violations"] }));
    console.log(`  axe ${label}: ${result.violations.length} violation(s)`);
    for (const v of result.violations) console.log(`    ${v.impact} ${v.id} (${v.nodes.length}) ${v.help}`);
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    check(bad.length === 0, `${label}: no serious or critical accessibility violation`);
  }

  async step(name, body) {
    try {
      await body();
      console.log("ok   " + name);
    } catch (e) {
      this.failures += 1;
      console.log("FAIL " + name + "\n     " + String(e.message || e).split("\n").join("\n     "));
      if (this.page) {
        const file = join(shots, "FAILED-" + name.replace(/[^a-z0-9]+/gi, "-") + ".png");
        await this.page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.log("     screenshot: " + file);
      }
    }
  }

  async screenshot(name) {
    await this.page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
  }

  /** Run `main(harness)`, stop everything, exit 0 or 1. */
  static async run(main) {
    const h = new Harness();
    try {
      await main(h);
    } catch (e) {
      h.failures += 1;
      console.log("FAIL setup: " + (e.stack || e));
    } finally {
      if (h.browser) await h.browser.close();
      if (h.server) h.server.kill("SIGTERM");
      rmSync(h.work, { recursive: true, force: true });
    }
    console.log(h.failures ? `${h.failures} failure(s); screenshots in target/browser/` : "browser tests passed");
    process.exit(h.failures ? 1 : 0);
  }
}

export function check(ok, what) {
  if (!ok) throw new Error("expected: " + what);
}

export { readFileSync };
