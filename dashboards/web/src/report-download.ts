// The district and city pages' "Download CSV" and "Download JSON" buttons: the reports shown on
// the page, as `citytel report --format csv|json` writes them (see report-export.ts), saved as
// `citytel-report-{name}-{start}-{end}.{csv,json}` (times as UTC hours, e.g. 20261101T00Z). The
// buttons are disabled until a report is shown.

import { h } from "./dom";
import type { DistrictReport } from "./gen/citytel/v1/report_pb";
import { reportsCsv, reportsJson } from "./report-export";

/** The download buttons, and `show` to hand them the reports now on the page. */
export interface ReportDownload {
  element: HTMLElement;
  /** The reports now shown (named `name` in the file names); undefined: none yet. */
  show(reports: DistrictReport[] | undefined, name: string, start: number, end: number): void;
}

/** A UTC time as a file name part: 20261101T00Z. */
function stamp(at: number): string {
  return new Date(at).toISOString().slice(0, 13).replaceAll("-", "") + "Z";
}

/** Offers `text` as a file named `name` to save. */
function save(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the file once the click's task is over.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/** The two buttons, in a group labelled for assistive technology. */
export function reportDownload(): ReportDownload {
  let shown: { reports: DistrictReport[]; file: string } | undefined;
  const csv = h("button", { type: "button", id: "download-csv", disabled: true }, "Download CSV");
  const json = h(
    "button",
    { type: "button", id: "download-json", disabled: true },
    "Download JSON",
  );
  csv.addEventListener("click", () => {
    if (shown) save(`${shown.file}.csv`, "text/csv", reportsCsv(shown.reports));
  });
  json.addEventListener("click", () => {
    if (shown) save(`${shown.file}.json`, "application/json", reportsJson(shown.reports));
  });
  const element = h(
    "div",
    { class: "downloads", role: "group", "aria-label": "Download the report" },
    csv,
    " ",
    json,
  );
  return {
    element,
    show(reports, name, start, end) {
      shown = reports && { reports, file: `citytel-report-${name}-${stamp(start)}-${stamp(end)}` };
      csv.disabled = json.disabled = shown === undefined;
    },
  };
}
