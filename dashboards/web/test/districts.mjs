// Browser test of the city map and the district page, driven by
// tests/tests/e2e/dashboard_districts.rs (which starts citytel with the simulator's districts
// file and city fleet, without authentication). In Debian's headless Chromium: the city page
// for the period START..END draws the map; for each figure chosen with "Colour by" the script
// reports every district's area as drawn (its value and its computed fill) and the table's
// values to the Rust test, which checks them against ListDistrictReports and the fill order
// against the values; then it clicks the district the test names, and reports the district
// page's figures, device rows and ListDevices requests, which the test checks against
// GetDistrictReport and ListDevices (and that the page asked for the district's devices only). On both pages it clicks Download CSV and Download JSON and hands the files to the
// Rust test, which compares them with what `citytel report` writes. Both pages pass axe-core's WCAG 2.1 A/AA rules; the period selector's presets
// change the period shown. Screenshots are saved along the way.
//
// Usage: node test/districts.mjs URL START_MS END_MS ARTIFACT_DIR.
// Protocol on stdout/stdin: for each figure F, prints "ready: map F JSON" (JSON: the drawn areas
// [{district, value, fill}] and the table's values {district: value}) and waits for
// "ok DISTRICT" (the district to click); prints "ready: district NAME JSON" (JSON: the page's
// {figures: {key: value}, devices: [id], listDevices: [[byte]]}) and waits for "ok NAME"; prints "ready: export WHICH
// JSON" (WHICH: "all" from the city page, else the district; JSON: {csv, json, csv_name,
// json_name}) after each page's downloads and waits for "ok WHICH"; last prints "ready: restart"
// and waits for "ok URL", citytel's new address (restarted without a small-cell capacity), where
// the district page must say that no capacity is configured. Exit status 0 means every
// check passed.

import { readFile } from "node:fs/promises";
import { Browser } from "./harness.mjs";

const [url, start, end, artifacts] = process.argv.slice(2);
if (!url || !start || !end || !artifacts) {
  console.error("usage: node test/districts.mjs URL START_MS END_MS ARTIFACT_DIR");
  process.exit(2);
}
const FIGURES = ["availability", "energy", "carbon", "no2"];

const b = await Browser.launch(artifacts, "districts");

/** Clicks the Download CSV and Download JSON buttons; the files and their names. */
async function downloads() {
  const files = {};
  for (const kind of ["csv", "json"]) {
    const [download] = await Promise.all([
      b.page.waitForEvent("download", { timeout: b.timeout }),
      b.page.click(`#download-${kind}:not([disabled])`),
    ]);
    files[kind] = await readFile(await download.path(), "utf8");
    files[`${kind}_name`] = download.suggestedFilename();
  }
  return files;
}

const { page } = b;
let failed = false;
try {
  const from = new Date(Number(start)).toISOString();
  const to = new Date(Number(end)).toISOString();
  const city = `${url}#/city?period=custom&from=${from}&to=${to}`;
  b.step(`open ${city}`);
  await page.goto(city);
  await page.waitForSelector("#city-map path.district", { timeout: b.timeout });
  await page.waitForSelector("#map-legend", { timeout: b.timeout });
  await page.waitForSelector("#city-map circle.device-point", { timeout: b.timeout });
  await b.checkAccessibility("city page");

  let target;
  for (const figure of FIGURES) {
    await page.click(`#figure-picker label:has(input[value="${figure}"])`);
    await page.waitForSelector(`#map-legend[data-figure="${figure}"]`, { timeout: b.timeout });
    const seen = await page.evaluate((f) => {
      const areas = [...document.querySelectorAll("#city-map path.district")].map((p) => ({
        district: p.dataset.district,
        value: p.dataset.value === "" ? null : Number(p.dataset.value),
        fill: getComputedStyle(p).fill,
      }));
      const table = {};
      for (const cell of document.querySelectorAll(
        `#district-figures-h ~ * td[data-figure="${f}"]`,
      )) {
        const v = cell.dataset.value;
        table[cell.closest("tr").dataset.district] = v === "" ? null : Number(v);
      }
      return { areas, table };
    }, figure);
    b.step(`coloured by ${figure}: ${seen.areas.length} areas`);
    await b.shot(`map-${figure}`);
    [target] = await b.ask(`map ${figure} ${JSON.stringify(seen)}`, "ok");
  }

  b.step("download every district's report from the city page");
  await b.ask(`export all ${JSON.stringify(await downloads())}`, "ok");

  // The district page's ListDevices requests (gRPC-Web frames), from the click on.
  const listDevices = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/citytel.v1.QueryService/ListDevices"))
      listDevices.push([...(r.postDataBuffer() ?? [])]);
  });
  b.step(`click ${target}`);
  await page.click(`#city-map path[data-district="${target}"]`);
  await page.waitForFunction(
    (d) => location.hash.startsWith(`#/districts/${encodeURIComponent(d)}`),
    target,
    { timeout: b.timeout },
  );
  await page.waitForSelector('#district-report [data-figure="energy"]', { timeout: b.timeout });
  await page.waitForSelector("#district-devices-h ~ * tr[data-device]", { timeout: b.timeout });
  const shown = await page.evaluate(() => {
    const figures = {};
    for (const el of document.querySelectorAll("#district-report [data-figure]")) {
      figures[el.dataset.figure] = el.dataset.value === "" ? null : Number(el.dataset.value);
    }
    const devices = [...document.querySelectorAll("#district-devices-h ~ * tr[data-device]")].map(
      (r) => r.dataset.device,
    );
    return { figures, devices };
  });
  shown.listDevices = listDevices;
  await b.shot("district");
  await b.checkAccessibility("district page");
  await b.ask(`district ${target} ${JSON.stringify(shown)}`, "ok");
  b.step(`download the report of ${target}`);
  await b.ask(`export ${target} ${JSON.stringify(await downloads())}`, "ok");

  b.step("the Day preset changes the period shown");
  const before = await page.locator("#period-text").textContent();
  await page.click('fieldset.period label:has(input[value="day"])');
  await page.waitForFunction(
    (t) => document.querySelector("#period-text")?.textContent !== t,
    before,
    { timeout: b.timeout },
  );
  if (!page.url().includes("period=day")) throw new Error(`the address is ${page.url()}`);
  await page.waitForSelector('#district-report [data-figure="energy"]', { timeout: b.timeout });

  b.step("without a small-cell capacity the page says so");
  await page.goto("about:blank"); // nothing asks the stopped citytel meanwhile
  const [restarted] = await b.ask("restart", "ok");
  await page.goto(`${restarted}#/districts/${encodeURIComponent(target)}?period=day`);
  await b.waitText("#capacity-none", { includes: "capacity not configured" }, "the capacity note");
  if ((await page.locator('[data-figure^="capacity-"]').count()) !== 0)
    throw new Error("capacity figures shown without a capacity");
  await b.checkAccessibility("district page without capacity");
  b.finish();
  console.log("ok: every district map check passed");
} catch (err) {
  failed = true;
  await b.fail(err);
} finally {
  await b.close();
}
process.exit(failed ? 1 : 0);
