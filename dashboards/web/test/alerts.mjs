// Browser test of the dashboard's alerts, driven by tests/tests/e2e/dashboard_alerts.rs (which
// starts citytel with a rule "a cabinet offline for 1 s is critical" and makes a cabinet go
// silent). In Debian's headless Chromium, signed in with an operator key: the header's badge goes
// from 0 to the number of firing alerts as the alert fires (through WatchAlerts, no reload), the
// alerts page lists the alert as firing, Acknowledge records the name typed on the page (the
// test then checks it with ListAlerts over gRPC), Silence creates a silence from the alert's
// labels for the chosen duration (checked with ListSilences) and Expire ends it, and the
// device's page lists its alert, acknowledged. Then, signed in with a viewer key, the alert is
// listed with the buttons disabled and the reason shown. Every page passes axe-core's WCAG 2.1
// A/AA rules without a serious finding; screenshots are saved along the way.
//
// Usage: node test/alerts.mjs URL DEVICE_ID ARTIFACT_DIR, with CITYTEL_OPERATOR_KEY and
// CITYTEL_VIEWER_KEY (keys of URL's citytel) in the environment.
// Protocol on stdout/stdin: prints "ready: fire" and waits for "firing ID COUNT" (alert ID of
// DEVICE_ID fires; COUNT alerts fire in all); prints "ready: acked NAME" and waits for
// "acked ID" once ListAlerts shows it acknowledged by NAME; prints "ready: silenced HOURS" and
// waits for "silenced ID" once ListSilences shows the silence; prints "ready: expired" and waits
// for "expired ID". Exit status 0 means every check passed.

import { Browser } from "./harness.mjs";

const [url, deviceId, artifacts] = process.argv.slice(2);
const operatorKey = process.env.CITYTEL_OPERATOR_KEY;
const viewerKey = process.env.CITYTEL_VIEWER_KEY;
if (!url || !deviceId || !artifacts || !operatorKey || !viewerKey) {
  console.error(
    "usage: CITYTEL_OPERATOR_KEY=... CITYTEL_VIEWER_KEY=... " +
      "node test/alerts.mjs URL DEVICE_ID ARTIFACT_DIR",
  );
  process.exit(2);
}
/** How soon the badge must follow a firing alert: the stream delivers the event at once, then
 * the count is asked again (coalesced, at most every 2 s), on a loaded machine. */
const BADGE_BOUND = 8_000;
const NAME = "Jo Field";
const HOURS = 4;

const b = await Browser.launch(artifacts, "alerts");
const { page } = b;
let failed = false;
try {
  b.step(`sign in at ${url} with an operator key`);
  await page.goto(url);
  await b.signIn(operatorKey);
  await page.waitForSelector('#account[data-role="operator"]', { timeout: b.timeout });
  await page.waitForSelector('#alert-badge[data-firing="0"]', { timeout: b.timeout });
  b.step("the badge shows no firing alert");

  const [alertId, countText] = await b.ask("fire", "firing");
  const count = Number(countText);
  await page
    .waitForSelector(`#alert-badge[data-firing="${count}"]`, { timeout: BADGE_BOUND })
    .catch(async () => {
      const shown = await page.locator("#alert-badge").getAttribute("data-firing");
      throw new Error(
        `the badge shows ${shown}, not ${count}, ${BADGE_BOUND} ms after the alert fired`,
      );
    });
  await b.waitText("#alert-badge", { eq: count }, "the badge shows the firing count");
  b.step(`the badge shows ${count} firing, without a reload`);
  await b.shot("badge");

  await page.click('nav a[href="#/alerts"]');
  const row = `#alert-list-h ~ * tr[data-alert="${alertId}"]`;
  await page.waitForSelector(`${row}[data-state="firing"]`, { timeout: b.timeout });
  await b.waitText(row, { includes: "cabinet-offline" }, "the row names the rule");
  await b.waitText(row, { includes: deviceId }, "the row names the device");
  await b.waitText(row, { includes: "Critical" }, "the row gives the severity");
  await b.waitText(row, { includes: `${deviceId} at site-01 is offline` }, "the summary");
  b.step(`the alerts page lists alert ${alertId} as firing`);
  await b.shot("alerts");
  await b.checkAccessibility("alerts page");

  await page.fill("#alert-actor", NAME);
  await page.press("#alert-actor", "Tab");
  await page.click(`${row} button.ack`);
  await page.waitForSelector(`${row}[data-acked="true"]`, { timeout: b.timeout });
  await b.waitText(`${row} .ack-cell`, { includes: NAME }, "the row says who acknowledged");
  await b.ask(`acked ${NAME}`, "acked");
  b.step(`acknowledged by ${NAME}, as ListAlerts confirms`);

  await page.click(`${row} button.silence`);
  await page.waitForSelector("#silence-dialog[open]", { timeout: b.timeout });
  const boxes = await page.locator("#silence-dialog input[type=checkbox]:checked").count();
  if (boxes < 3) throw new Error(`the silence dialog offers ${boxes} checked labels`);
  await page.selectOption("#silence-duration", String(HOURS * 3_600_000));
  await page.fill("#silence-comment", "cabinet replaced tomorrow");
  await b.checkAccessibility("silence dialog");
  await b.shot("silence-dialog");
  await page.click("#silence-create");
  await page.waitForSelector("#silence-dialog", { state: "detached", timeout: b.timeout });
  await page.waitForSelector("#silences-h ~ * tr[data-silence]", { timeout: b.timeout });
  await b.waitText(`${row}`, { includes: "silenced" }, "the alert shows it is silenced");
  const [silenceId] = await b.ask(`silenced ${HOURS}`, "silenced");
  await b.waitText(
    `tr[data-silence="${silenceId}"]`,
    { includes: "cabinet replaced tomorrow" },
    "the silence is listed with its comment",
  );
  b.step(`silence ${silenceId} created from the alert's labels, as ListSilences confirms`);
  await b.shot("silenced");
  await page.click(`tr[data-silence="${silenceId}"] button.expire`);
  await page.waitForSelector(`tr[data-silence="${silenceId}"]`, {
    state: "detached",
    timeout: b.timeout,
  });
  await b.ask("expired", "expired");
  b.step(`silence ${silenceId} expired`);

  await page.click(`${row} a[href="#/devices/${deviceId}"]`);
  const deviceRow = `#device-alerts-h ~ * tr[data-alert="${alertId}"]`;
  await page.waitForSelector(`${deviceRow}[data-state="firing"][data-acked="true"]`, {
    timeout: b.timeout,
  });
  await b.waitText(deviceRow, { includes: NAME }, "the device page shows who acknowledged");
  b.step(`${deviceId}'s page lists alert ${alertId}, acknowledged`);
  await b.shot("device");
  await b.checkAccessibility("device page with alerts");

  b.step("sign out; sign in with a viewer key");
  await page.click("#sign-out");
  await b.signIn(viewerKey);
  await page.waitForSelector('#account[data-role="viewer"]', { timeout: b.timeout });
  await page.waitForSelector(`#alert-badge[data-firing="${count}"]`, { timeout: b.timeout });
  await page.goto(`${url}#/alerts`);
  await page.waitForSelector(`${row}[data-state="firing"]`, { timeout: b.timeout });
  if ((await page.locator("#alert-actor").count()) !== 0)
    throw new Error("a viewer is asked for a name to act under");
  const enabled = await page.locator("main button.silence:enabled, main button.expire:enabled");
  if ((await enabled.count()) !== 0) throw new Error("a viewer has enabled alert buttons");
  const silenceButton = page.locator(`${row} button.silence`);
  if (!(await silenceButton.isDisabled())) throw new Error("a viewer's Silence is enabled");
  const reason = await page
    .locator(`#${await silenceButton.getAttribute("aria-describedby")}`)
    .textContent();
  if (!reason?.includes("viewer") || !reason.includes("operator"))
    throw new Error(`the disabled buttons' reason says ${JSON.stringify(reason)}`);
  b.step(`a viewer sees the alert, its buttons disabled: "${reason.trim()}"`);
  await b.shot("viewer");
  await b.checkAccessibility("alerts page for a viewer");
  b.finish();
  console.log("ok: every alerts check passed");
} catch (err) {
  failed = true;
  await b.fail(err);
} finally {
  await b.close();
}
process.exit(failed ? 1 : 0);
