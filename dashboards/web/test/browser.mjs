// Browser test of the dashboard, driven by tests/tests/e2e/dashboard_browser.rs (which starts
// citytel and a simulated fleet). Opens the dashboard in Debian's headless Chromium and checks, as
// a person would see it: a citytel without authentication opens without signing in ("open, no
// key"); one with keys shows the sign-in page, refuses a wrong key and takes the admin key, whose
// organisation and role then show in the header; the overview counts the fleet's devices, the
// device list lists them, a device born while the list is open appears in it, and leaves the list
// filtered on "online" when it goes offline, each within the list's reload bound, a device's page
// draws its charts and appends live points, and a state change (the test stops some devices)
// reaches the overview through WatchEvents. Then signing out returns to the sign-in page, a scoped
// viewer key's header shows its organisation and role, its device list shows exactly its cabinets
// and none of the other devices, a hidden device's page says it is not found or not visible, and
// revoking that key sends the page back to the sign-in page. Each page is also checked with axe-core (WCAG 2.1 A/AA rules). Saves
// screenshots along the way.
//
// Usage: node test/browser.mjs URL OPEN_URL DEVICES DEVICE_ID ARTIFACT_DIR, with the keys in the
// environment: CITYTEL_ADMIN_KEY (an admin key of URL's citytel) and CITYTEL_SCOPED_KEY (a viewer
// key of another organisation). OPEN_URL is a citytel without authentication.
// Protocol on stdout/stdin: the script prints "ready: birth" and waits for "born ID" (a new
// device was born), prints "ready: death" and waits for "dead ID" (it went offline), prints
// "ready: stop-devices" and waits for "stopped ID..." naming the devices that were stopped,
// prints "ready: scoped" and waits for "scoped ID..." naming the devices the scoped key must
// see, prints "ready: hidden" and waits for "hidden ID..." naming devices it must not see, then
// prints "ready: revoke" and waits for "revoked ID" (the scoped key was revoked). Exit
// status 0 means every check passed.
// Chromium, the waits, the protocol and the accessibility checks are in harness.mjs.

import { Browser } from "./harness.mjs";

const [url, openUrl, devicesArg, deviceId, artifacts] = process.argv.slice(2);
const adminKey = process.env.CITYTEL_ADMIN_KEY;
const scopedKey = process.env.CITYTEL_SCOPED_KEY;
if (!url || !openUrl || !devicesArg || !deviceId || !artifacts || !adminKey || !scopedKey) {
  console.error(
    "usage: CITYTEL_ADMIN_KEY=... CITYTEL_SCOPED_KEY=... " +
      "node test/browser.mjs URL OPEN_URL DEVICES DEVICE_ID ARTIFACT_DIR",
  );
  process.exit(2);
}
const devices = Number(devicesArg);
const TIMEOUT = 30_000;
/** How soon a state change must show in the open device list: its coalesced reload runs at most
 * every 2 s (README), plus the calls and a loaded machine. */
const LIST_BOUND = 6_000;
/** How soon a revoked key's page must be back at the sign-in page: open streams check their key
 * every 2 s, then the page reloads. */
const REVOKED_BOUND = 15_000;
const b = await Browser.launch(artifacts, "dashboard");
const { page } = b;
const step = (text) => b.step(text);
const shot = (name) => b.shot(name);
const waitText = (selector, test, what) => b.waitText(selector, test, what);
const ask = (what, verb) => b.ask(what, verb);
const signIn = (key) => b.signIn(key);
const checkAccessibility = (name) => b.checkAccessibility(name);

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

let failed = false;
try {
  step(`open ${openUrl}, which runs without authentication`);
  await page.goto(openUrl);
  await waitText("#account", { includes: "open, no key" }, "the header says there is no key");
  await waitText("#live-status", { includes: "Live" }, "the open dashboard's stream connects");
  if ((await page.locator("#signin").count()) !== 0)
    throw new Error("the dashboard without authentication asks to sign in");
  step("the open dashboard needs no key");
  await shot("open");

  step(`open ${url}, which needs a key`);
  await page.goto(url);
  await page.waitForSelector("#signin", { timeout: TIMEOUT });
  await shot("signin");
  await checkAccessibility("sign-in page");
  await page.fill("#signin-key", `citytel_000000000000_${"0".repeat(64)}`);
  await page.click('#signin button[type="submit"]');
  await waitText("#signin-error", { includes: "does not work" }, "a wrong key is refused");
  step("a wrong key is refused");
  await signIn(adminKey);
  await page.waitForSelector('#account[data-role="admin"][data-org="city"]', { timeout: TIMEOUT });
  if ((await page.locator("#sign-out").count()) !== 1)
    throw new Error("the header has no sign-out button");
  step(`signed in: ${(await page.locator("#account .who").textContent()).trim()}`);
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

  await page.click("#sign-out");
  await page.waitForSelector("#signin", { timeout: TIMEOUT });
  await waitText("#signin-notice", { includes: "signed out" }, "the sign-in page says why");
  step("signed out");

  // A partner's viewer key scoped to cabinets sees its cabinets and nothing else.
  const visible = await ask("scoped", "scoped");
  const hidden = await ask("hidden", "hidden");
  await signIn(scopedKey);
  await page.waitForSelector('#account[data-role="viewer"][data-org="university"]', {
    timeout: TIMEOUT,
  });
  await waitText("#account", { includes: "City University" }, "the header names the partner");
  await waitText("#account", { includes: "kind cabinet" }, "the header says what the key sees");
  await page.goto(`${url}#/devices`);
  await page.waitForSelector(`.list-status[data-total="${visible.length}"]`, { timeout: TIMEOUT });
  const listed = await page
    .locator("tbody tr[data-device]")
    .evaluateAll((rows) => rows.map((r) => r.dataset.device));
  if (JSON.stringify([...listed].sort()) !== JSON.stringify([...visible].sort()))
    throw new Error(`the scoped key's list shows ${listed}, its cabinets are ${visible}`);
  const leaked = listed.filter((id) => hidden.includes(id));
  if (leaked.length > 0) throw new Error(`the scoped key's list shows ${leaked}`);
  step(`the scoped key's device list shows its ${listed.length} devices: ${listed.join(", ")}`);
  await shot("scoped");
  await page.goto(`${url}#/devices/${hidden[0]}`);
  await waitText(
    "#banner",
    { includes: "not visible to this API key" },
    "a hidden device is not found",
  );
  step(`${hidden[0]}, outside the key's scope, is not found`);

  // Revoked while its page is open: back to the sign-in page, saying so.
  await ask("revoke", "revoked");
  await page.waitForSelector("#signin", { timeout: REVOKED_BOUND });
  await waitText("#signin-notice", { includes: "revoked" }, "the sign-in page says why");
  step("the revoked key was sent back to the sign-in page");
  await shot("revoked");
  b.finish();
  console.log("ok: every dashboard check passed");
} catch (err) {
  failed = true;
  await b.fail(err);
} finally {
  await b.close();
}
process.exit(failed ? 1 : 0);
