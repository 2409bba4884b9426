// Shared plumbing of the loopback peers (op.mjs, github.mjs): the config file the Rust side
// writes (tests/src/oauth_peers.rs), the users file it rewrites while a peer runs, the request
// log it reads, and the "ready" file announcing the port.

import fs from 'node:fs';
import path from 'node:path';

/** The JSON config file named by argv[2]. */
export function readConfig() {
  const file = process.argv[2];
  if (!file) {
    console.error(`usage: node ${path.basename(process.argv[1])} CONFIG.json`);
    process.exit(2);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/**
 * The users file, re-read on every call (the Rust side replaces it atomically, so a reader
 * never sees half a file): `{ "<login_hint email>": { ...claims } }`. A missing file is no user.
 */
export function readUsers(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return {};
    throw err;
  }
}

/** Appends one JSON line per request to `file` (synchronously: before the answer leaves). */
export function recorder(file) {
  return (entry) => {
    fs.appendFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  };
}

/** Lower-cased header names; repeated headers joined as Node joins them. */
export function headersOf(req) {
  return { ...req.headers };
}

/** Writes `{ port }` to `file` atomically, once the server listens. */
export function announce(file, port) {
  fs.writeFileSync(`${file}.part`, JSON.stringify({ port }));
  fs.renameSync(`${file}.part`, file);
}

/** Reads a request body to a Buffer (with a cap). */
export function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
