// Browser test of the dashboard, driven by tests/tests/e2e/dashboard_browser.rs (which starts
// citytel and a simulated fleet). Opens the dashboard in Debian's headless Chromium and checks, as
// a person would see it: the overview counts the fleet's devices, the device list lists them, a
// device born while the list is open appears in it, and leaves the list filtered on "online" when
// it goes offline, each within the list's reload bound, a device's page draws its charts and
// appends live points, and a state change (the test stops some devices) reaches the overview
// through WatchEvents. Each page is also checked with axe-core (WCAG 2.1 A/AA rules). Saves
// screenshots along the way.
//
// Usage: node test/browser.mjs URL DEVICES DEVICE_ID ARTIFACT_DIR
// Protocol on stdout/stdin: the script prints "ready: birth" and waits for "born ID" (a new
// device was born), prints "ready: death" and waits for "dead ID" (it went offline), then prints
// "ready: stop-devices" and waits for "stopped ID..." naming the devices that were stopped. Exit
// status 0 means every check passed.

import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [url, devicesArg, deviceId, artifacts] = process.argv.slice(2);
if (!url || !devicesArg || !deviceId || !artifacts) {
  console.error("usage: node test/browser.mjs URL DEVICES DEVICE_ID ARTIFACT_DIR");
  process.exit(2);
}
const devices = Number(devicesArg);
const TIMEOUT = 30_000;
/** How soon a state change must show in the open device list: its coalesced reload runs at most
 * every 2 s (README), plus the calls and a loaded machine. */
const LIST_BOUND = 6_000;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

const axeSource = await readFile(
  new URL("../node_modules/axe-core/axe.min.js", import.meta.url),
  "utf8",
);
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const problems = [];
await mkdir(artifacts, { recursive: true });
const profile = await mkdtemp(join(tmpdir(), "citytel-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
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
page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
page.on("console", (msg) => {
  if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
});

function step(text) {
  console.log(`step: ${text}`);
}

async function shot(name) {
  const path = join(artifacts, `dashboard-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

/** Waits until the text of `selector` passes `test`: `{ includes }` for a substring, or
 * `{ eq, min, max }` for the number it shows. */
async function waitText(selector, test, what) {
  try {
    await page.waitForFunction(
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
    const text = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 1000 })
      .catch(() => "(absent)");
    throw new Error(
      `${what}: ${selector} shows ${JSON.stringify(text)} (${err.message.split("\n")[0]})`,
    );
  }
}

/** Prints `ready: WHAT` and returns the IDs of the answer `VERB ID...`. */
async function ask(what, verb) {
  console.log(`ready: ${what}`);
  const answer = await stdinLines.next();
  const words = String(answer.value ?? "")
    .split(/\s+/)
    .filter(Boolean);
  if (words[0] !== verb || words.length < 2)
    throw new Error(`expected "${verb} ID...", got ${JSON.stringify(answer.value)}`);
  return words.slice(1);
}

/** Waits until the device list shows (`state: "attached"`) or no longer shows (`"detached"`)
 * the row of `id`, within the list's bound. */
async function waitRow(id, state, what) {
  try {
    await page.waitForSelector(`tbody tr[data-device="${id}"]`, { state, timeout: LIST_BOUND });
  } catch (err) {
    const listed = await page
      .locator("tbody tr[data-device]")
      .evaluateAll((rows) => rows.map((r) => r.dataset.device));
    throw new Error(
      `${what} within ${LIST_BOUND} ms: the list shows ${JSON.stringify(listed)} (${err.message.split("\n")[0]})`,
    );
  }
}

/** Runs axe-core on the page; serious and critical findings fail the test. */
async function checkAccessibility(name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, {
      runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    }),
  );
  for (const v of result.violations) {
    const where = v.nodes.map((n) => n.target.join(" ")).slice(0, 3);
    const line = `accessibility (${name}): ${v.impact} ${v.id}: ${v.help} at ${where.join(", ")}`;
    if (v.impact === "serious" || v.impact === "critical") problems.push(line);
    else console.log(`warning: ${line}`);
  }
  step(
    `${name}: ${result.violations.length} accessibility findings, ${result.passes.length} rules pass`,
  );
}

let failed = false;
try {
  step(`open ${url}`);
  await page.goto(url);
  await waitText("#live-status", { includes: "Live" }, "the live stream connects");
  await waitText('[data-count="total"]', { eq: devices }, `the overview counts ${devices} devices`);
  await waitText('[data-count="online"]', { min: 1 }, "devices are online");
  step(`overview shows ${devices} devices`);
  await shot("overview");
  await checkAccessibility("overview");

  await page.goto(`${url}#/devices`);
  await page.waitForSelector(`.list-status[data-total="${devices}"]`, { timeout: TIMEOUT });
  const rows = await page.locator("tbody tr[data-device]").count();
  if (rows !== devices) throw new Error(`the device list has ${rows} rows, expected ${devices}`);
  step(`device list lists ${rows} devices`);
  await shot("devices");
  await checkAccessibility("device list");

  // A device connects for the first time while the list is open.
  const [born] = await ask("birth", "born");
  await waitRow(born, "attached", `${born}, born while the list is open, is listed`);
  await page.waitForSelector(`.list-status[data-total="${devices + 1}"]`, { timeout: LIST_BOUND });
  step(`${born} appeared in the open list`);
  // Filtered on "online", the list drops it when it goes offline.
  await page.selectOption("#f-state", "online");
  await waitRow(born, "attached", `${born} is listed as online`);
  const [dead] = await ask("death", "dead");
  await waitRow(dead, "detached", `${dead}, now offline, leaves the list of online devices`);
  step(`${dead} left the list filtered on online`);
  await shot("devices-online");

  await page.goto(`${url}#/devices/${encodeURIComponent(deviceId)}?range=1h`);
  const chart = page.locator("figure.chart").first();
  await chart.waitFor({ timeout: TIMEOUT });
  await page.waitForFunction(
    () => [...document.querySelectorAll("figure.chart")].some((f) => Number(f.dataset.points) > 0),
    undefined,
    { timeout: TIMEOUT },
  );
  const metric = await page
    .locator("figure.chart")
    .evaluateAll((figs) => figs.find((f) => Number(f.dataset.points) > 0).dataset.metric);
  const selector = `figure.chart[data-metric="${metric}"]`;
  const before = Number(await page.locator(selector).getAttribute("data-points"));
  const canvas = await page.locator(`${selector} canvas`).first().boundingBox();
  if (!canvas || canvas.width < 100 || canvas.height < 100) {
    throw new Error(`the ${metric} chart's canvas is ${JSON.stringify(canvas)}`);
  }
  step(`${deviceId} charts ${metric} with ${before} points`);
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel)?.dataset.points) > n,
    [selector, before],
    { timeout: TIMEOUT },
  );
  const after = Number(await page.locator(selector).getAttribute("data-points"));
  step(`live readings appended: ${before} -> ${after} points`);
  await shot("device");
  await checkAccessibility("device page");

  await page.goto(url);
  await waitText("#live-status", { includes: "Live" }, "the live stream reconnects");
  await waitText('[data-count="total"]', { eq: devices + 1 }, "the overview again");
  const stopped = await ask("stop-devices", "stopped");
  for (const id of stopped) {
    await page.waitForSelector(`#attention-h ~ div tr[data-device="${id}"]`, { timeout: TIMEOUT });
    await page.waitForSelector(`.events li[data-device="${id}"]`, { timeout: TIMEOUT });
  }
  await waitText(
    '[data-count="online"]',
    { max: devices - stopped.length },
    "the online count drops",
  );
  const offline = await page.locator('[data-count="offline"]').textContent();
  const unreachable = await page.locator('[data-count="unreachable"]').textContent();
  const counts = `offline ${offline}, unreachable ${unreachable}`;
  step(`state change seen: ${stopped.join(", ")} need attention (${counts})`);
  await shot("state-change");
  if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join("\n")}`);
  console.log("ok: every dashboard check passed");
} catch (err) {
  failed = true;
  console.error(`FAILED: ${err.message}`);
  if (problems.length > 0) console.error(problems.join("\n"));
  await shot("failure").catch(() => {});
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
