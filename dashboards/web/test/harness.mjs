// What a browser test script needs: Debian's headless Chromium (playwright-core) with a fresh
// profile, page errors and console errors collected as problems, steps and screenshots, text
// waits with a useful failure message, the stdin/stdout protocol with the Rust test that drives
// the script, signing in, and axe-core's accessibility rules.

import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const TIMEOUT = 30_000;

/** A headless Chromium with one page. */
export class Browser {
  /** Starts Chromium (`$CHROMIUM`, or `/usr/bin/chromium`); screenshots go to `artifacts`,
   * named `{prefix}-{name}.png`. */
  static async launch(artifacts, prefix) {
    await mkdir(artifacts, { recursive: true });
    const profile = await mkdtemp(join(tmpdir(), "citytel-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1600, height: 1000 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return new Browser(context, page, profile, artifacts, prefix);
  }

  constructor(context, page, profile, artifacts, prefix) {
    this.context = context;
    this.page = page;
    this.profile = profile;
    this.artifacts = artifacts;
    this.prefix = prefix;
    this.timeout = TIMEOUT;
    this.problems = [];
    this.stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    page.on("pageerror", (err) => this.problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") this.problems.push(`console error: ${msg.text()}`);
    });
  }

  step(text) {
    console.log(`step: ${text}`);
  }

  async shot(name) {
    const path = join(this.artifacts, `${this.prefix}-${name}.png`);
    await this.page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
  }

  /** Waits until the text of `selector` passes `test`: `{ includes }` for a substring, or
   * `{ eq, min, max }` for the number it shows. */
  async waitText(selector, test, what) {
    try {
      await this.page.waitForFunction(
        ([sel, t]) => {
          const text = document.querySelector(sel)?.textContent ?? "";
          if (t.includes !== undefined) return text.includes(t.includes);
          const digits = text.replace(/\D/g, "");
          const n = Number(digits);
          return (
            digits !== "" &&
            (t.eq === undefined || n === t.eq) &&
            (t.min === undefined || n >= t.min) &&
            (t.max === undefined || n <= t.max)
          );
        },
        [selector, test],
        { timeout: TIMEOUT },
      );
    } catch (err) {
      const text = await this.page
        .locator(selector)
        .first()
        .textContent({ timeout: 1000 })
        .catch(() => "(absent)");
      throw new Error(
        `${what}: ${selector} shows ${JSON.stringify(text)} (${err.message.split("\n")[0]})`,
      );
    }
  }

  /** Prints `ready: WHAT` and returns the words after `VERB` in the answer `VERB WORD...`. */
  async ask(what, verb) {
    console.log(`ready: ${what}`);
    const answer = await this.stdin.next();
    const words = String(answer.value ?? "")
      .split(/\s+/)
      .filter(Boolean);
    if (words[0] !== verb || words.length < 2)
      throw new Error(`expected "${verb} ...", got ${JSON.stringify(answer.value)}`);
    return words.slice(1);
  }

  /** Signs in on the sign-in page with `key`; waits until the header shows the session. */
  async signIn(key) {
    await this.page.waitForSelector("#signin", { timeout: TIMEOUT });
    await this.page.fill("#signin-key", key);
    await this.page.click('#signin button[type="submit"]');
    await this.page.waitForSelector("#account:not([hidden])", { timeout: TIMEOUT });
  }

  /** Runs axe-core on the page; serious and critical findings are problems. */
  async checkAccessibility(name) {
    const source = await readFile(
      new URL("../node_modules/axe-core/axe.min.js", import.meta.url),
      "utf8",
    );
    await this.page.evaluate(source);
    const result = await this.page.evaluate(() =>
      window.axe.run(document, {
        runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
      }),
    );
    for (const v of result.violations) {
      const where = v.nodes.map((n) => n.target.join(" ")).slice(0, 3);
      const line = `accessibility (${name}): ${v.impact} ${v.id}: ${v.help} at ${where.join(", ")}`;
      if (v.impact === "serious" || v.impact === "critical") this.problems.push(line);
      else console.log(`warning: ${line}`);
    }
    this.step(
      `${name}: ${result.violations.length} accessibility findings, ${result.passes.length} rules pass`,
    );
  }

  /** Throws if the page reported problems. */
  finish() {
    if (this.problems.length > 0)
      throw new Error(`the page reported problems:\n${this.problems.join("\n")}`);
  }

  /** Reports `err` (and the problems) and saves a screenshot. */
  async fail(err) {
    console.error(`FAILED: ${err.message}`);
    if (this.problems.length > 0) console.error(this.problems.join("\n"));
    await this.shot("failure").catch(() => {});
  }

  async close() {
    await this.context.close();
    await rm(this.profile, { recursive: true, force: true });
  }
}
