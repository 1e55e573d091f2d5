// The reference tus server for bench/bench_uploads.py: @tus/server with @tus/file-store, as its README sets it up.
//
//   node server.mjs PORT DIRECTORY
//
// Serves tus 1.0.0 at http://127.0.0.1:PORT/files/ and keeps uploads in DIRECTORY (one file per upload, named by its
// id, beside a .json with its metadata). Prints one line on stdout once it listens; stops on SIGTERM.
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'

const [port, directory] = process.argv.slice(2)
if (!port || !directory) {
  console.error('usage: node server.mjs PORT DIRECTORY')
  process.exit(2)
}

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) })
const http = tus.listen({ host: '127.0.0.1', port: Number(port) }, () => {
  console.log(`@tus/server listening on http://127.0.0.1:${port}/files/`)
})
process.on('SIGTERM', () => http.close(() => process.exit(0)))
