// Builds the dashboard into dist/: app.js (the TypeScript bundle), app.css (the styles with
// uPlot's) and index.html, minified and under fixed names. The build is deterministic (pinned
// esbuild, no timestamps, no content hashes), so CI can check that a rebuild reproduces the
// committed dist/ byte for byte; citytel embeds dist/ and serves it with revalidation (ETag).
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist);

const common = {
  bundle: true,
  minify: true,
  target: ["chrome109", "firefox115", "safari16"],
  legalComments: "eof",
  logLevel: "warning",
};
await build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js", format: "iife" });
await build({ ...common, entryPoints: ["src/style.css"], outfile: "dist/app.css" });
await copyFile(new URL("./index.html", import.meta.url), new URL("index.html", dist));
