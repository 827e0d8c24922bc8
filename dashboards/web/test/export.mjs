// The dashboard's report files outside the browser, for tests/tests/e2e/dashboard_export.rs:
// bundles src/report-export.ts (the code behind the Download CSV / JSON buttons) with esbuild,
// reads a binary `citytel.v1.ListDistrictReportsResponse`, and writes the reports as the
// dashboard would download them, for the Rust test to compare with `citytel report`'s files.
//
// Usage: node test/export.mjs REPORTS.pb OUT_DIR (writes OUT_DIR/reports.csv and reports.json).

import { build } from "esbuild";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [input, out] = process.argv.slice(2);
if (!input || !out) {
  console.error("usage: node test/export.mjs REPORTS.pb OUT_DIR");
  process.exit(2);
}
const web = fileURLToPath(new URL("..", import.meta.url));
const entry = `
import { fromBinary } from "@bufbuild/protobuf";
import { ListDistrictReportsResponseSchema } from "./src/gen/citytel/v1/report_pb";
import { reportsCsv, reportsJson } from "./src/report-export";
export function files(bytes) {
  const { reports } = fromBinary(ListDistrictReportsResponseSchema, bytes);
  return { csv: reportsCsv(reports), json: reportsJson(reports) };
}
`;
const dir = await mkdtemp(join(tmpdir(), "citytel-export-"));
try {
  const bundle = join(dir, "export.mjs");
  await build({
    stdin: { contents: entry, resolveDir: web, loader: "ts" },
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: bundle,
    logLevel: "warning",
  });
  const { files } = await import(pathToFileURL(bundle).href);
  const { csv, json } = files(new Uint8Array(await readFile(input)));
  await writeFile(join(out, "reports.csv"), csv);
  await writeFile(join(out, "reports.json"), json);
} finally {
  await rm(dir, { recursive: true, force: true });
}
