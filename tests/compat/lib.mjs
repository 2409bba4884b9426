// Shared helpers for the compatibility scripts: the official Better-Auth client in Node with a
// cookie jar (Node has none), JWT verification with jose, and a tiny step runner that prints
// what it checks and exits non-zero on the first failure.

import assert from "node:assert/strict";
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import pg from "pg";

export { assert };

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
}

export function randomEmail(tag = "user") {
  return `${tag}-${Math.random().toString(36).slice(2, 10)}@example.com`;
}

let current = "(start)";
const started = Date.now();
const failures = [];

/**
 * Runs one named check. A failure is printed with the step name and the assertion, and the
 * script goes on (later steps may fail as a consequence); `done()` then exits 1. With
 * `{fatal: true}` (or env COMPAT_FAIL_FAST=1) the script stops at once.
 */
export async function step(name, fn, { fatal = false } = {}) {
  current = name;
  const t = Date.now();
  try {
    await fn();
  } catch (e) {
    console.error(`FAIL ${name}\n${indent(e?.stack ?? String(e))}`);
    failures.push(name);
    if (fatal || process.env.COMPAT_FAIL_FAST === "1") done();
    return false;
  }
  console.log(`ok   ${name} (${Date.now() - t} ms)`);
  return true;
}

function indent(s) {
  return s.split("\n").map((l) => `     | ${l}`).join("\n");
}

export function done(script = process.argv[1]?.split("/").pop()) {
  if (failures.length) {
    console.error(`FAILED ${script}: ${failures.length} step(s) failed:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
    process.exit(1);
  }
  console.log(`PASS ${script}: all steps passed in ${Date.now() - started} ms`);
  process.exit(0);
}

process.on("unhandledRejection", (e) => {
  console.error(`\nFAIL (unhandled rejection during "${current}"):\n${e?.stack ?? e}`);
  process.exit(1);
});

/** A `name=value` cookie jar fed from `Set-Cookie` headers. */
export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }
  update(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const maxAge = attrs.map((a) => a.trim()).find((a) => /^max-age=/i.test(a));
      if (value === "" || (maxAge && Number(maxAge.split("=")[1]) <= 0)) {
        this.cookies.delete(name);
      } else {
        this.cookies.set(name, value);
      }
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  get(name) {
    return this.cookies.get(name);
  }
}

/**
 * Follows redirects from `url` like a browser (GET, cookies from one jar for every
 * 127.0.0.1 port, as browsers do not separate cookies by port), until a redirect leaves for a
 * URL for which `stop(url)` is true (not requested), or an answer is not a redirect.
 * Returns `{url, status, hops}`.
 */
export async function follow(url, jar, stop) {
  const hops = [];
  for (let i = 0; i < 20; i++) {
    const headers = {};
    const c = jar.header();
    if (c) headers.cookie = c;
    const res = await fetch(url, { redirect: "manual", headers });
    jar.update(res);
    const location = res.headers.get("location");
    hops.push({ url, status: res.status, location });
    if (res.status < 300 || res.status >= 400 || !location) return { url, status: res.status, hops };
    const next = new URL(location, url).href;
    if (stop(next)) return { url: next, status: res.status, hops };
    url = next;
  }
  throw new Error(`more than 20 redirects: ${JSON.stringify(hops)}`);
}

/**
 * The official client, wired like a browser on `origin` (cookie jar + Origin header), or in
 * bearer mode (`{bearer: true}`: token from `set-auth-token`, no cookies, Origin only for the
 * sign-in/up calls that need it).
 *
 * Returns `{client, jar, last, state}`; `last()` is the most recent raw Response (to read headers
 * such as `set-auth-jwt`).
 */
export function makeClient(baseURL, { origin = baseURL, bearer = false, sendOrigin = true } = {}) {
  const jar = new CookieJar();
  const state = { token: undefined, last: undefined, origin, sendOrigin };
  const customFetchImpl = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    if (!bearer) {
      const c = jar.header();
      if (c) headers.set("cookie", c);
    }
    if (state.sendOrigin && state.origin) headers.set("origin", state.origin);
    const res = await fetch(url, { ...init, headers });
    if (!bearer) jar.update(res);
    state.last = res;
    return res;
  };
  const fetchOptions = { customFetchImpl };
  if (bearer) {
    fetchOptions.auth = { type: "Bearer", token: () => state.token };
    fetchOptions.onSuccess = (ctx) => {
      const t = ctx.response.headers.get("set-auth-token");
      if (t) state.token = t;
    };
  }
  const client = createAuthClient({ baseURL, plugins: [jwtClient()], fetchOptions });
  return { client, jar, state, last: () => state.last };
}

/** Asserts a `{data, error}` result succeeded and returns `data`. */
export function ok(result, what = "call") {
  if (result.error) {
    assert.fail(`${what} failed: ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

/** Asserts a `{data, error}` result failed with `status` and (if given) `code`. */
export function fails(result, status, code, what = "call") {
  assert.ok(result.error, `${what}: expected error ${status} ${code ?? ""}, got data ${JSON.stringify(result.data)}`);
  assert.equal(result.error.status, status, `${what}: status (error ${JSON.stringify(result.error)})`);
  if (code !== undefined) {
    assert.equal(result.error.code, code, `${what}: code (error ${JSON.stringify(result.error)})`);
  }
  return result.error;
}

const jwksCache = new Map();

/**
 * Verifies a JWT with jose against `jwksUrl`, with issuer and audience `expectedIss` (the
 * auth server's origin, Better-Auth's default for both). Returns `{payload, protectedHeader}`.
 */
export async function verifyJwt(token, jwksUrl, expectedIss, { algorithms } = {}) {
  if (!jwksCache.has(jwksUrl)) jwksCache.set(jwksUrl, createRemoteJWKSet(new URL(jwksUrl)));
  const opts = { issuer: expectedIss, audience: expectedIss };
  if (algorithms) opts.algorithms = algorithms;
  return await jwtVerify(token, jwksCache.get(jwksUrl), opts);
}

export function jwtHeader(token) {
  return decodeProtectedHeader(token);
}

/** A plain fetch returning `{status, headers, body}` (body parsed as JSON when possible). */
export async function http(method, url, { headers = {}, body } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === "content-type")) {
      init.headers["content-type"] = "application/json";
    }
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Runs one SQL statement on the database at `url`; returns its rows. */
export async function query(url, text, params = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** The stored password hash of the user's one credential account. */
export async function credentialHash(url, userId) {
  const rows = await query(url, `SELECT password FROM "account" WHERE "userId" = $1 AND "providerId" = 'credential'`, [userId]);
  assert.equal(rows.length, 1, `one credential account for ${userId}`);
  return rows[0].password;
}
