// Cut a WebM file into live segments with the browser recorder's own code (frontend/src/recorder/webm.ts, bundled
// here with the front end's esbuild), as tests/integration/test_webm_cutter.py asks.
//
//   node recorder_webm.mjs FILE [--seed N] [--max-piece BYTES] [--out DIR]
//
// The file is fed in pieces of random sizes (1 byte to --max-piece, from a seeded generator), as MediaRecorder
// hands over its chunks. Prints one JSON object per line: {"event": "init", "size"}, then {"event": "segment",
// "index", "size", "seconds"} for each segment, then {"event": "end"}; or {"event": "error", "name", "message"}
// when the code refuses the file (exit status 0 either way; 1 only when this script itself fails). With --out, the
// header is written to DIR/init.webm and each segment to DIR/00000.webm, DIR/00001.webm, ...
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { recorderModules, seededRandom } from "./recorder_bundle.mjs";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: "string", default: "1" },
    "max-piece": { type: "string", default: "70000" },
    out: { type: "string" },
  },
});

const { WebmCutter } = await recorderModules('export { WebmCutter } from "./webm";');
const random = seededRandom(args.seed);

const data = new Uint8Array(await readFile(positionals[0]));
const maxPiece = Number(args["max-piece"]);
const out = args.out;
if (out) await mkdir(out, { recursive: true });
const cutter = new WebmCutter();
let initSent = false;
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const report = async (segments) => {
  if (!initSent && cutter.init) {
    say({ event: "init", size: cutter.init.length });
    if (out) await writeFile(join(out, "init.webm"), cutter.init);
    initSent = true;
  }
  for (const segment of segments) {
    say({ event: "segment", index: segment.index, size: segment.bytes.length, seconds: segment.seconds });
    if (out) await writeFile(join(out, `${String(segment.index).padStart(5, "0")}.webm`), segment.bytes);
  }
};

try {
  let at = 0;
  while (at < data.length) {
    // Mostly large pieces, now and then a tiny one that cuts an element header in two.
    const size = random() < 0.2 ? 1 + Math.floor(random() * 12) : 1 + Math.floor(random() * maxPiece);
    // A copy, as MediaRecorder's chunks are: the cutter may keep a piece until its segment is whole.
    await report(cutter.push(data.slice(at, at + size)));
    at += size;
  }
  await report(cutter.end());
  say({ event: "end" });
} catch (error) {
  say({ event: "error", name: error.name, message: error.message });
}
