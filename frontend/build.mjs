// Bundles the browser modules into the Python package, where `framecast serve` serves them from /static/dist/.
// One bundle per page (the player also serves /embed), ES modules, minified, with source maps; names are stable and
// the server adds a content hash to their URLs, so browsers can cache them for good.
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";
import { build } from "esbuild";

const watch = process.argv.includes("--watch");

const options = {
  entryPoints: {
    player: "src/player.ts",
    recorder: "src/recorder.ts",
    library: "src/library.ts",
    app: "src/app.css",
  },
  outdir: "../src/framecast/web/static/dist",
  bundle: true,
  format: "esm",
  target: ["chrome111", "firefox115", "safari16.4"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: process.argv.includes("--quiet") ? "warning" : "info",
};

if (watch) {
  const { context } = await import("esbuild");
  await (await context(options)).watch();
} else {
  // esbuild has already printed what failed; the stack trace would only bury it.
  const result = await build({ ...options, metafile: true }).catch(() => process.exit(1));
  // Compressed once here rather than on every request: gzip -9 of the player takes tens of milliseconds, which the
  // watch page's first frame would otherwise wait for. The server sends `name.gz` to browsers that accept gzip.
  for (const file of Object.keys(result.metafile.outputs)) {
    if (/\.(js|css)$/.test(file)) {
      writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: constants.Z_BEST_COMPRESSION }));
    }
  }
}
