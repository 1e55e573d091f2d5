// What tests/js/recorder_*.mjs share: the browser recorder's own TypeScript modules, bundled with the front end's
// esbuild, and a seeded generator to cut a file into pieces of random sizes as MediaRecorder hands over its chunks.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const frontend = fileURLToPath(new URL("../../frontend/", import.meta.url));

/** The exports `source` names (TypeScript, resolved in frontend/src/recorder), bundled and imported. */
export async function recorderModules(source) {
  const { build } = createRequire(`${frontend}package.json`)("esbuild");
  const bundled = await build({
    stdin: { contents: source, resolveDir: `${frontend}src/recorder`, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    logLevel: "error",
  });
  return import(`data:text/javascript;base64,${Buffer.from(bundled.outputFiles[0].text).toString("base64")}`);
}

/** mulberry32: small, seeded, good enough to vary piece sizes reproducibly. Returns numbers in [0, 1). */
export function seededRandom(seed) {
  let state = Number(seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
