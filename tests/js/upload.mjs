// Upload a file to a tus server with tus-js-client, as tests/integration/test_tus_clients.py asks.
//
//   node upload.mjs --endpoint URL --file PATH [--upload-url URL] [--header "Name: value"]...
//                   [--metadata key=value]... [--chunk-size BYTES] [--parallel N] [--abort-after BYTES]
//
// --upload-url resumes an upload created earlier; --abort-after stops (abort()) once that many bytes were sent.
// Prints one JSON object per line on stdout: {"event": "head", "offset"} for the resume HEAD, then
// {"event": "aborted" | "success", "url", "bytes"}. Exits 1 with the error on stderr when the upload fails.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { Upload } from "tus-js-client";

const { values: args } = parseArgs({
  options: {
    endpoint: { type: "string" },
    file: { type: "string" },
    "upload-url": { type: "string" },
    header: { type: "string", multiple: true, default: [] },
    metadata: { type: "string", multiple: true, default: [] },
    "chunk-size": { type: "string" },
    parallel: { type: "string", default: "1" },
    "abort-after": { type: "string" },
  },
});

const pairs = (items, separator) =>
  Object.fromEntries(
    items.map((item) => {
      const at = item.indexOf(separator);
      return [item.slice(0, at).trim(), item.slice(at + 1).trim()];
    }),
  );

const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const data = await readFile(args.file);
const abortAfter = args["abort-after"] === undefined ? null : Number(args["abort-after"]);

await new Promise((resolve, reject) => {
  let aborting = false;
  const upload = new Upload(data, {
    endpoint: args.endpoint,
    uploadUrl: args["upload-url"] ?? null,
    headers: pairs(args.header, ":"),
    metadata: pairs(args.metadata, "="),
    chunkSize: args["chunk-size"] === undefined ? Infinity : Number(args["chunk-size"]),
    parallelUploads: Number(args.parallel),
    retryDelays: [100, 300, 1000],
    onAfterResponse(req, res) {
      if (req.getMethod() === "HEAD") print({ event: "head", offset: Number(res.getHeader("Upload-Offset")) });
    },
    onProgress(bytes) {
      if (abortAfter !== null && bytes >= abortAfter && !aborting) {
        aborting = true;
        upload.abort().then(() => {
          print({ event: "aborted", url: upload.url, bytes });
          resolve();
        }, reject);
      }
    },
    onSuccess() {
      print({ event: "success", url: upload.url, bytes: data.length });
      resolve();
    },
    onError: reject,
  });
  upload.start();
}).catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
