// Drives Debian's Chromium (never a downloaded browser: playwright-core only) through one
// scenario against running latchkey daemons, and prints one line `RESULT <json>` on stdout
// for tests/tests/browser.rs to check. Everything else it prints (page console, failed
// requests, responses, static-server hits) is diagnostics for the log file.
//
// A step that goes wrong is recorded in the result, not thrown: the Rust test decides. The
// exit code is 0 when the scenario ran to its end, 3 when the deadline hit, 1 on a fatal error
// (e.g. Chromium would not start); the RESULT line is printed in every case.
//
// Environment:
//   SCENARIO     "flow" (sign-up, sign-in, reload, token, /api/me, proxied path) or
//                "untrusted" (sign-up from an origin the daemons do not trust)
//   BUNDLE       the page script made by bundle.mjs
//   APP_URL      origin of the page as the browser sees it (http://localhost:F, https://app…)
//   APP_PORT     port the static server listens on (127.0.0.1)
//   TLS_CERT, TLS_KEY  optional: serve the page over https with this certificate, and have
//                Chromium accept it (--ignore-certificate-errors-spki-list with its key's hash)
//   AUTH_URL, API_URL, PROXY_URL, PROXY_PATH   what the page talks to
//   USER_NAME, EMAIL, PASSWORD   the user to sign up
//   HOST_RULES   optional --host-resolver-rules value (e.g. "MAP *.example.test 127.0.0.1")
//   CHROMIUM     default /usr/bin/chromium
//   DEADLINE_MS  default 100000: the whole run, after which it gives up
//   STEP_TIMEOUT_MS  default 20000: each browser action

import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
};

const started = Date.now();
const log = (...parts) =>
  console.error(`[${((Date.now() - started) / 1000).toFixed(2)}s]`, ...parts);

const result = { scenario: env("SCENARIO"), steps: [], console: [], failedRequests: [] };
let printed = false;
function printResult(exitCode) {
  if (!printed) {
    printed = true;
    result.elapsedMs = Date.now() - started;
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  }
  process.exitCode = exitCode;
}

const deadline = Number(env("DEADLINE_MS", "100000"));
const stepTimeout = Number(env("STEP_TIMEOUT_MS", "20000"));
setTimeout(() => {
  result.fatal = `deadline of ${deadline} ms reached (steps so far: ${result.steps.join(", ")})`;
  log(result.fatal);
  printResult(3);
  process.exit(3);
}, deadline);

function withTimeout(promise, what, ms = stepTimeout) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// The page's own origin: a static server for index.html and the bundle.

const appUrl = env("APP_URL");
const tlsCert = process.env.TLS_CERT || null;
const tlsKey = process.env.TLS_KEY || null;
const bundle = readFileSync(env("BUNDLE"));
const pageConfig = {
  authUrl: env("AUTH_URL"),
  apiUrl: env("API_URL", ""),
  proxyUrl: env("PROXY_URL", ""),
  proxyPath: env("PROXY_PATH", "/"),
};
const indexHtml = `<!doctype html>
<html><head><meta charset="utf-8"><title>latchkey browser test</title>
<script>window.LATCHKEY_CONFIG = ${JSON.stringify(pageConfig).replace(/</g, "\\u003c")};</script>
<script src="/bundle.js"></script>
</head><body><p>latchkey browser test</p></body></html>
`;

function handle(req, res) {
  log(`static: ${req.method} ${req.url}`);
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/" || path === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(indexHtml);
  } else if (path === "/bundle.js") {
    res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" });
    res.end(bundle);
  } else if (path === "/favicon.ico") {
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  }
}

function startStaticServer() {
  const server =
    tlsCert && tlsKey
      ? https.createServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey) }, handle)
      : http.createServer(handle);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(env("APP_PORT")), "127.0.0.1", () => resolve(server));
  });
}

/** base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's flag wants it. */
function spkiHash(certPath) {
  const spki = new X509Certificate(readFileSync(certPath)).publicKey.export({
    type: "spki",
    format: "der",
  });
  return createHash("sha256").update(spki).digest("base64");
}

// ---------------------------------------------------------------------------------------------
// The browser.

async function launch(userDataDir) {
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
  if (process.env.HOST_RULES) args.push(`--host-resolver-rules=${process.env.HOST_RULES}`);
  if (tlsCert) args.push(`--ignore-certificate-errors-spki-list=${spkiHash(tlsCert)}`);
  log(`launching ${env("CHROMIUM", "/usr/bin/chromium")} ${args.join(" ")}`);
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args,
    timeout: 30000,
    // Only what the flags above say; never relax certificate checks at the CDP level.
    ignoreHTTPSErrors: false,
  });
}

function watch(page) {
  page.on("console", (m) => {
    const line = `console.${m.type()}: ${m.text()}`;
    result.console.push(line);
    log(line);
  });
  page.on("pageerror", (e) => {
    const line = `pageerror: ${e.message}`;
    result.console.push(line);
    log(line);
  });
  page.on("requestfailed", (r) => {
    const line = `${r.method()} ${r.url()}: ${r.failure()?.errorText}`;
    result.failedRequests.push(line);
    log(`requestfailed ${line}`);
  });
  page.on("response", async (r) => {
    const h = r.headers();
    const cors = ["access-control-allow-origin", "access-control-allow-credentials", "vary"]
      .filter((k) => h[k] !== undefined)
      .map((k) => `${k}=${h[k]}`)
      .join(" ");
    log(`response ${r.status()} ${r.request().method()} ${r.url()} ${cors}`);
  });
}

async function act(page, name, ...args) {
  result.steps.push(name);
  const value = await withTimeout(
    page.evaluate(([n, a]) => window.latchkey[n](...a), [name, args]),
    name,
  );
  log(`${name}: ${JSON.stringify(value)}`);
  return value;
}

async function open(page, what) {
  result.steps.push(what);
  const response = await withTimeout(
    page.goto(appUrl + "/", { waitUntil: "load", timeout: stepTimeout }),
    what,
  );
  if (appUrl.startsWith("https:")) result.pageTls = await response?.securityDetails();
  await withTimeout(
    page.waitForFunction(() => window.latchkeyReady === true, null, { timeout: stepTimeout }),
    `${what}: page script`,
  );
}

async function flow(context, page) {
  const name = env("USER_NAME", "Browser User");
  const email = env("EMAIL");
  const password = env("PASSWORD");
  await open(page, "load page");
  result.env = await act(page, "env");
  result.signUp = await act(page, "signUp", name, email, password);
  result.signIn = await act(page, "signIn", email, password);
  result.steps.push("reload");
  await withTimeout(page.reload({ waitUntil: "load", timeout: stepTimeout }), "reload");
  await withTimeout(
    page.waitForFunction(() => window.latchkeyReady === true, null, { timeout: stepTimeout }),
    "reload: page script",
  );
  result.sessionAfterReload = await act(page, "getSession");
  result.cookies = (await context.cookies()).map(({ value, ...rest }) => ({
    ...rest,
    valueLength: value.length,
  }));
  result.token = await act(page, "token");
  const jwt = result.token?.data?.token;
  if (jwt) {
    result.me = await act(page, "me", jwt);
    result.proxied = await act(page, "proxied", jwt);
  }
  // A refused token: the 401's WWW-Authenticate must be readable (exposed) by the page.
  result.meRefused = await act(page, "me", "not-a-jwt");
}

async function untrusted(context, page) {
  await open(page, "load page");
  result.env = await act(page, "env");
  result.signUp = await act(
    page,
    "signUp",
    env("USER_NAME", "Browser User"),
    env("EMAIL"),
    env("PASSWORD"),
  );
  // The API refuses the origin too: even its 401 must stay unreadable.
  result.me = await act(page, "me", "not-a-jwt");
  result.cookies = (await context.cookies()).map(({ name, domain }) => ({ name, domain }));
}

async function main() {
  const scenarios = { flow, untrusted };
  const scenario = scenarios[result.scenario];
  if (!scenario) throw new Error(`unknown SCENARIO ${result.scenario}`);
  const server = await startStaticServer();
  const userDataDir = mkdtempSync(join(tmpdir(), "latchkey-chromium-"));
  let context;
  try {
    context = await launch(userDataDir);
    result.browserVersion = context.browser()?.version() ?? null;
    const page = context.pages()[0] ?? (await context.newPage());
    watch(page);
    await scenario(context, page);
  } finally {
    if (context) await withTimeout(context.close(), "closing the browser", 10000).catch(log);
    server.close();
    server.closeAllConnections?.();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

try {
  await main();
  printResult(0);
} catch (e) {
  result.fatal = String(e?.stack ?? e);
  log(`fatal: ${result.fatal}`);
  printResult(1);
}
process.exit(process.exitCode);
