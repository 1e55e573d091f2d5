// Cut an MP4 file into live segments with the browser recorder's own code (frontend/src/recorder/boxes.ts and
// segments.ts, bundled here with the front end's esbuild), as tests/e2e/test_web_recorder.py asks.
//
//   node recorder_segments.mjs FILE [--seed N] [--max-piece BYTES]
//
// The file is fed in pieces of random sizes (1 byte to --max-piece, from a seeded generator), as MediaRecorder
// hands over its chunks. Prints one JSON object per line: {"event": "init", "size"}, then {"event": "segment",
// "index", "size", "seconds"} for each segment, then {"event": "end"}; or {"event": "error", "name", "message"}
// when the code refuses the file (exit status 0 either way; 1 only when this script itself fails).
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { recorderModules, seededRandom } from "./recorder_bundle.mjs";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: "string", default: "1" }, "max-piece": { type: "string", default: "70000" } },
});

const { BoxSplitter, Segmenter } = await recorderModules(
  'export { BoxSplitter } from "./boxes"; export { Segmenter } from "./segments";',
);
const random = seededRandom(args.seed);

const data = new Uint8Array(await readFile(positionals[0]));
const maxPiece = Number(args["max-piece"]);
const splitter = new BoxSplitter();
const segmenter = new Segmenter();
let initSent = false;
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const report = (segments) => {
  if (!initSent && segmenter.init) {
    say({ event: "init", size: segmenter.init.length });
    initSent = true;
  }
  for (const segment of segments) {
    say({ event: "segment", index: segment.index, size: segment.bytes.length, seconds: segment.seconds });
  }
};

try {
  let at = 0;
  while (at < data.length) {
    // Mostly large pieces, now and then a tiny one that cuts a box header in two.
    const size = random() < 0.2 ? 1 + Math.floor(random() * 12) : 1 + Math.floor(random() * maxPiece);
    report(segmenter.push(splitter.push(data.subarray(at, at + size))));
    at += size;
  }
  report(segmenter.push(splitter.end()));
  report(segmenter.end());
  say({ event: "end" });
} catch (error) {
  say({ event: "error", name: error.name, message: error.message });
}
