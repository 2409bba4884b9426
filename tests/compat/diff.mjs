// Differential wire check: the same raw HTTP exchanges against a real Better-Auth server
// (in-process, on its own database) and against latchkey-auth, compared after normalising
// ids, tokens, signatures and dates.
//
//   strict differences (status, error code, body shape, Set-Cookie names/attributes/order,
//   presence of the headers clients read) fail the script;
//   soft differences (message wording, content-type parameters, endpoints latchkey does not
//   implement) are printed as NOTE lines.
//
// Environment: AUTH_URL (latchkey-auth; must trust TRUSTED_ORIGIN), TRUSTED_ORIGIN,
// DATABASE_URL (latchkey's database), BA_DATABASE_URL (an empty database for the reference
// server), BA_PORT (free port).

import { startBA, migrateBA } from "./ba.mjs";
import { done, env, query, randomEmail, step } from "./lib.mjs";

const LK = env("AUTH_URL").replace(/\/$/, "");
const TRUSTED = env("TRUSTED_ORIGIN");
const BA_DB = env("BA_DATABASE_URL");
const LK_DB = env("DATABASE_URL");
const BA_URL = `http://127.0.0.1:${env("BA_PORT")}`;
process.env.BETTER_AUTH_TRUSTED_ORIGINS = TRUSTED;

// ---- normalisation --------------------------------------------------------------------------

const ID = /^[A-Za-z0-9]{32}$/;
const SIGNED = /^[A-Za-z0-9]{32}\.[A-Za-z0-9+/]{43}=$/;
const JWT = /^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function norm(v) {
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, ["x", "y", "n", "d"].includes(k) && typeof v[k] === "string" ? "<b64url>" : norm(v[k])]));
  }
  if (typeof v === "string") {
    if (ID.test(v)) return "<id>";
    if (SIGNED.test(v)) return "<token.sig>";
    if (JWT.test(v)) return "<jwt>";
    if (ISO.test(v)) return "<date>";
  }
  return v;
}

/** Body "shape": normalised, with `message` texts removed (compared softly). */
function shape(body) {
  const n = norm(body);
  if (n && typeof n === "object" && !Array.isArray(n) && typeof n.message === "string") {
    return { ...n, message: "<message>" };
  }
  return n;
}

function normCookie(line) {
  const [pair, ...attrs] = line.split(";").map((s) => s.trim());
  const eq = pair.indexOf("=");
  const name = pair.slice(0, eq);
  const value = decodeURIComponent(pair.slice(eq + 1));
  const kind = value === "" ? "" : SIGNED.test(value) ? "<token.sig>" : /^true\.[A-Za-z0-9+/]{43}=$/.test(value) ? "<true.sig>" : "<value>";
  return [`${name}=${kind}`, ...attrs].join("; ");
}

const WATCHED_HEADERS = ["set-auth-token", "set-auth-jwt", "location", "cache-control", "x-retry-after"];

async function exchange(base, { method = "GET", path, headers = {}, body, form }) {
  const init = { method, headers: { ...headers }, redirect: "manual" };
  if (form !== undefined) {
    init.body = new URLSearchParams(form).toString();
    init.headers["content-type"] ??= "application/x-www-form-urlencoded";
  } else if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] ??= "application/json";
  }
  const res = await fetch(`${base}/api/auth${path}`, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = `<non-json ${text.length} bytes>`;
  }
  const watched = {};
  for (const h of WATCHED_HEADERS) {
    const v = res.headers.get(h);
    if (v !== null) watched[h] = h === "location" ? v : norm(v);
  }
  const expose = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/).filter(Boolean).sort();
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    body: json,
    cookies: res.headers.getSetCookie().map(normCookie),
    rawCookies: res.headers.getSetCookie(),
    authToken: res.headers.get("set-auth-token"),
    headers: watched,
    expose,
  };
}

function cookieHeader(r) {
  return r.rawCookies.map((c) => c.split(";")[0]).filter((c) => !c.endsWith("=")).join("; ");
}

// ---- the scenario (run once per server) -----------------------------------------------------

const email = randomEmail("diff");
const email2 = randomEmail("diff2");
const PW = "diff password 1";
// The same sequence of "fresh" addresses for both servers.
const pool = Array.from({ length: 40 }, (_, i) => randomEmail(`f${i}`));

const sql = query;

async function scenario(base, db) {
  const out = [];
  const ctx = {};
  let next = 0;
  const randomEmail = () => pool[next++];
  const origin = { origin: base };
  const rec = async (label, req) => {
    const r = await exchange(base, req);
    out.push({ label, req, r });
    return r;
  };
  const sec = { "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty" };

  await rec("GET /ok", { path: "/ok" });
  const up = await rec("sign-up ok", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "Diff", email: email.toUpperCase(), password: PW, image: "https://example.com/d.png" } });
  ctx.cookie = cookieHeader(up);
  ctx.token = up.body?.token;
  await rec("sign-up duplicate", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "Diff", email, password: PW } });
  await rec("sign-up short password", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "D", email: randomEmail(), password: "1234567" } });
  await rec("sign-up long password", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "D", email: randomEmail(), password: "x".repeat(129) } });
  await rec("sign-up missing name+password", { method: "POST", path: "/sign-up/email", headers: origin, body: { email: randomEmail() } });
  await rec("sign-up bad email", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "D", email: "nope", password: PW } });
  await rec("sign-up name not a string", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: 42, email: randomEmail(), password: PW } });
  await rec("sign-up form-urlencoded", { method: "POST", path: "/sign-up/email", headers: origin, form: { name: "Form", email: email2, password: PW } });
  await rec("sign-up no body", { method: "POST", path: "/sign-up/email", headers: { ...origin, "content-type": "application/json" } });
  await rec("sign-up text/plain", { method: "POST", path: "/sign-up/email", headers: { ...origin, "content-type": "text/plain" }, body: "hello" });
  await rec("sign-up malformed JSON", { method: "POST", path: "/sign-up/email", headers: origin, body: "{nope" });
  await rec("sign-up JSON array body", { method: "POST", path: "/sign-up/email", headers: origin, body: "[]" });
  await rec("sign-up rememberMe false", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "R", email: randomEmail("rm"), password: PW, rememberMe: false } });

  await rec("sign-in ok", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  await rec("sign-in wrong password", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: "wrong password" } });
  await rec("sign-in unknown user", { method: "POST", path: "/sign-in/email", headers: origin, body: { email: randomEmail("nobody"), password: PW } });
  await rec("sign-in bad email", { method: "POST", path: "/sign-in/email", headers: origin, body: { email: "nope", password: PW } });
  await rec("sign-in missing password", { method: "POST", path: "/sign-in/email", headers: origin, body: { email } });
  await rec("sign-in callbackURL relative", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW, callbackURL: "/dashboard" } });
  await rec("sign-in callbackURL untrusted", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW, callbackURL: "http://evil.example/x" } });
  await rec("sign-in callbackURL trusted origin", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW, callbackURL: `${TRUSTED}/done` } });
  const rm = await rec("sign-in rememberMe false", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW, rememberMe: false } });
  ctx.rmCookie = cookieHeader(rm);
  await rec("sign-in form-urlencoded", { method: "POST", path: "/sign-in/email", headers: origin, form: { email, password: PW } });
  await rec("sign-in no Origin, no sec-fetch (curl)", { method: "POST", path: "/sign-in/email", body: { email, password: PW } });
  await rec("sign-in sec-fetch, no Origin", { method: "POST", path: "/sign-in/email", headers: sec, body: { email, password: PW } });
  await rec("sign-in cross-site navigate", { method: "POST", path: "/sign-in/email", headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" }, body: { email, password: PW } });
  await rec("sign-in Origin null", { method: "POST", path: "/sign-in/email", headers: { origin: "null" }, body: { email, password: PW } });
  await rec("sign-in untrusted Origin", { method: "POST", path: "/sign-in/email", headers: { origin: "http://evil.example" }, body: { email, password: PW } });
  await rec("sign-in Referer only (trusted)", { method: "POST", path: "/sign-in/email", headers: { ...sec, referer: `${base}/login` }, body: { email, password: PW } });
  await rec("sign-in trusted extra origin", { method: "POST", path: "/sign-in/email", headers: { origin: TRUSTED }, body: { email, password: PW } });
  await rec("sign-in with X-Forwarded-For + UA", { method: "POST", path: "/sign-in/email", headers: { ...origin, "x-forwarded-for": "203.0.113.7", "user-agent": "diff/1.0" }, body: { email, password: PW } });

  const c = { cookie: ctx.cookie };
  await rec("get-session cookie", { path: "/get-session", headers: c });
  await rec("get-session disableRefresh", { path: "/get-session?disableRefresh=true", headers: c });
  await rec("get-session no cookie", { path: "/get-session" });
  await rec("get-session bad signature", { path: "/get-session", headers: { cookie: `better-auth.session_token=${ctx.token}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D` } });
  await rec("get-session unknown token (valid format)", { path: "/get-session", headers: { cookie: "better-auth.session_token=nope" } });
  await rec("get-session dont_remember session", { path: "/get-session", headers: { cookie: ctx.rmCookie } });
  await rec("get-session bearer signed", { path: "/get-session", headers: { authorization: `Bearer ${up.authToken}` } });
  await rec("get-session bearer signed, URI-encoded", { path: "/get-session", headers: { authorization: `Bearer ${encodeURIComponent(up.authToken)}` } });
  await rec("get-session bearer raw token", { path: "/get-session", headers: { authorization: `Bearer ${ctx.token}` } });
  await rec("get-session bearer lower-case scheme", { path: "/get-session", headers: { authorization: `bearer ${ctx.token}` } });
  await rec("POST get-session", { method: "POST", path: "/get-session", headers: { ...c, ...origin }, body: {} });
  await rec("HEAD get-session", { method: "HEAD", path: "/get-session", headers: c });

  const tok = await rec("token", { path: "/token", headers: c });
  {
    // The JWT itself: header and claims, normalised (iat/exp → lifetime; iss/aud → "<origin>").
    const [h, p] = (tok.body?.token ?? "..").split(".").slice(0, 2).map((x) => JSON.parse(Buffer.from(x, "base64url").toString() || "null"));
    const claims = p && { ...p, iat: "<iat>", exp: "<exp>", lifetime: p.exp - p.iat, iss: p.iss === base ? "<origin>" : p.iss, aud: p.aud === base ? "<origin>" : p.aud };
    // latchkey adds a `sid` claim (the session id, for revocation checks): an extension.
    let note;
    if (claims && "sid" in claims && base === LK) {
      delete claims.sid;
      note = "latchkey's JWT adds a `sid` claim (extension; Better-Auth has none)";
    }
    out.push({ label: "JWT header + claims from /token", note, r: { status: 200, body: { header: h, claims }, cookies: [], headers: {}, expose: [] } });
  }
  await rec("token no session", { path: "/token" });
  await rec("jwks", { path: "/jwks" });
  await rec("list-sessions", { path: "/list-sessions", headers: c });
  await rec("list-sessions no session", { path: "/list-sessions" });

  await rec("update-user name", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: { name: "Diff 2" } });
  await rec("update-user nothing", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: {} });
  await rec("update-user email", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: { email: randomEmail() } });
  await rec("update-user image null", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: { image: null } });
  await rec("update-user name wrong type", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: { name: 5 } });
  await rec("update-user unknown field", { method: "POST", path: "/update-user", headers: { ...c, ...origin }, body: { name: "X", role: "admin" } });
  await rec("update-user no Origin", { method: "POST", path: "/update-user", headers: c, body: { name: "No" } });
  await rec("update-user Referer", { method: "POST", path: "/update-user", headers: { ...c, referer: `${base}/settings` }, body: { name: "Ref" } });
  await rec("update-user untrusted Origin", { method: "POST", path: "/update-user", headers: { ...c, origin: "http://evil.example" }, body: { name: "Evil" } });
  await rec("update-user no session", { method: "POST", path: "/update-user", headers: origin, body: { name: "Anon" } });

  await rec("change-password wrong current", { method: "POST", path: "/change-password", headers: { ...c, ...origin }, body: { currentPassword: "nope nope", newPassword: "another password" } });
  await rec("change-password too short", { method: "POST", path: "/change-password", headers: { ...c, ...origin }, body: { currentPassword: PW, newPassword: "short" } });
  await rec("change-password missing field", { method: "POST", path: "/change-password", headers: { ...c, ...origin }, body: { newPassword: "another password" } });
  await rec("change-password ok", { method: "POST", path: "/change-password", headers: { ...c, ...origin }, body: { currentPassword: PW, newPassword: PW + "x" } });
  const cp = await rec("change-password revokeOtherSessions", { method: "POST", path: "/change-password", headers: { ...c, ...origin }, body: { currentPassword: PW + "x", newPassword: PW, revokeOtherSessions: true } });
  const c2 = { cookie: cookieHeader(cp) || ctx.cookie };
  await rec("get-session old cookie after revokeOtherSessions", { path: "/get-session", headers: c });
  await rec("get-session new cookie", { path: "/get-session", headers: c2 });

  await rec("revoke-session unknown token", { method: "POST", path: "/revoke-session", headers: { ...c2, ...origin }, body: { token: "x".repeat(32) } });
  await rec("revoke-session missing token", { method: "POST", path: "/revoke-session", headers: { ...c2, ...origin }, body: {} });
  await rec("revoke-other-sessions", { method: "POST", path: "/revoke-other-sessions", headers: { ...c2, ...origin }, body: {} });
  await rec("revoke-other-sessions no body", { method: "POST", path: "/revoke-other-sessions", headers: { ...c2, ...origin } });
  await rec("sign-out", { method: "POST", path: "/sign-out", headers: { ...c2, ...origin }, body: {} });
  await rec("sign-out again (no session)", { method: "POST", path: "/sign-out", headers: { ...c2, ...origin } });
  await rec("sign-out no cookie", { method: "POST", path: "/sign-out" });
  const s2 = await rec("sign-in for revoke-sessions", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  await rec("revoke-sessions", { method: "POST", path: "/revoke-sessions", headers: { cookie: cookieHeader(s2), ...origin } });

  // Sessions over time (rows edited in the database, as time passing would).
  const t1 = await rec("sign-in for ageing", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  const ct1 = { cookie: cookieHeader(t1) };
  await sql(db, `UPDATE "session" SET "expiresAt" = now() + interval '5 days' WHERE token = $1`, [t1.body.token]);
  await rec("get-session due for refresh (expires in 5 d)", { path: "/get-session", headers: ct1 });
  const [row] = await sql(db, `SELECT extract(epoch FROM "expiresAt" - now())::int AS left FROM "session" WHERE token = $1`, [t1.body.token]);
  out.push({ label: "refresh moved expiresAt to ~7 d", r: { status: 200, body: { days: Math.round(row.left / 86400) }, cookies: [], headers: {}, expose: [] } });
  await sql(db, `UPDATE "session" SET "createdAt" = now() - interval '2 days' WHERE token = $1`, [t1.body.token]);
  await rec("list-sessions with a 2-day-old session", { path: "/list-sessions", headers: ct1 });
  await rec("revoke-other-sessions with a 2-day-old session", { method: "POST", path: "/revoke-other-sessions", headers: { ...ct1, ...origin }, body: {} });
  await sql(db, `UPDATE "session" SET "expiresAt" = now() - interval '1 minute' WHERE token = $1`, [t1.body.token]);
  await rec("get-session expired", { path: "/get-session", headers: ct1 });
  const gone = await sql(db, `SELECT count(*)::int AS n FROM "session" WHERE token = $1`, [t1.body.token]);
  out.push({ label: "expired session row deleted", r: { status: 200, body: { rows: gone[0].n }, cookies: [], headers: {}, expose: [] } });
  await rec("token with expired session", { path: "/token", headers: ct1 });

  const t2 = await rec("sign-in for self-revoke", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  await rec("revoke-session (own current token)", { method: "POST", path: "/revoke-session", headers: { cookie: cookieHeader(t2), ...origin }, body: { token: t2.body.token } });
  await rec("get-session after self-revoke", { path: "/get-session", headers: { cookie: cookieHeader(t2) } });

  // Input edge cases.
  const t3 = await rec("sign-in for cookie parsing", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  await rec("sign-up extra unknown field", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "X", email: randomEmail(), password: PW, role: "admin", emailVerified: true } });
  await rec("sign-up empty name", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "", email: randomEmail(), password: PW } });
  await rec("sign-up email with spaces", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "S", email: ` ${randomEmail()} `, password: PW } });
  await rec("sign-up password exactly 8", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "E", email: randomEmail(), password: "12345678" } });
  await rec("sign-up 128 UTF-16 units (64 emoji)", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "E", email: randomEmail(), password: "😀".repeat(64) } });
  await rec("sign-up 129 UTF-16 units", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "E", email: randomEmail(), password: "😀".repeat(64) + "a" } });
  await rec("sign-up image not a URL", { method: "POST", path: "/sign-up/email", headers: origin, body: { name: "I", email: randomEmail(), password: PW, image: "not a url" } });
  await rec("sign-up content-type with charset", { method: "POST", path: "/sign-up/email", headers: { ...origin, "content-type": "application/json; charset=utf-8" }, body: JSON.stringify({ name: "C", email: randomEmail(), password: PW }) });
  await rec("sign-in email with spaces", { method: "POST", path: "/sign-in/email", headers: origin, body: { email: ` ${email} `, password: PW } });
  await rec("sign-in password wrong type", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: 12345678 } });
  await rec("get-session quoted cookie", { path: "/get-session", headers: { cookie: `other=1; better-auth.session_token="${encodeURIComponent(t3.authToken ?? "")}"` } });
  await rec("get-session duplicate cookie (first wins)", { path: "/get-session", headers: { cookie: `better-auth.session_token=garbage; ${cookieHeader(t3)}` } });

  await rec("unknown path", { path: "/nope" });
  await rec("trailing slash", { path: "/get-session/" });
  await rec("wrong method", { method: "GET", path: "/sign-in/email" });
  await rec("OPTIONS preflight", { method: "OPTIONS", path: "/sign-in/email", headers: { origin: TRUSTED, "access-control-request-method": "POST" } });
  // Endpoints added after the first comparison, and (soft) ones latchkey lacks.
  const s3 = await rec("sign-in for extras", { method: "POST", path: "/sign-in/email", headers: origin, body: { email, password: PW } });
  const c3 = { cookie: cookieHeader(s3), ...origin };
  // Implemented: compared strictly like every other exchange.
  await rec("list-accounts", { path: "/list-accounts", headers: c3 });
  await rec("verify-password", { method: "POST", path: "/verify-password", headers: c3, body: { password: PW } });
  await rec("verify-password wrong", { method: "POST", path: "/verify-password", headers: c3, body: { password: "not the password" } });
  await rec("update-session", { method: "POST", path: "/update-session", headers: c3, body: {} });
  // Email flows: Better-Auth's reference has send callbacks, latchkey a transport (the log).
  await rec("request-password-reset", { method: "POST", path: "/request-password-reset", headers: origin, body: { email } });
  await rec("request-password-reset unknown email", { method: "POST", path: "/request-password-reset", headers: origin, body: { email: "nobody-diff@example.com", redirectTo: "/reset" } });
  await rec("request-password-reset untrusted redirectTo", { method: "POST", path: "/request-password-reset", headers: origin, body: { email, redirectTo: "https://evil.example/reset" } });
  await rec("request-password-reset bad email", { method: "POST", path: "/request-password-reset", headers: origin, body: { email: "nope" } });
  await rec("send-verification-email", { method: "POST", path: "/send-verification-email", headers: origin, body: { email } });
  await rec("send-verification-email with session", { method: "POST", path: "/send-verification-email", headers: c3, body: { email } });
  await rec("send-verification-email with session, other email", { method: "POST", path: "/send-verification-email", headers: c3, body: { email: email2 } });
  await rec("send-verification-email untrusted callbackURL", { method: "POST", path: "/send-verification-email", headers: origin, body: { email, callbackURL: "https://evil.example/" } });
  await rec("verify-email garbage token", { path: "/verify-email?token=garbage" });
  await rec("verify-email garbage token with callbackURL", { path: "/verify-email?token=garbage&callbackURL=%2Fdone%3Fx%3D1" });
  await rec("verify-email untrusted callbackURL", { path: "/verify-email?token=garbage&callbackURL=https%3A%2F%2Fevil.example%2F" });
  await rec("verify-email without token", { path: "/verify-email" });
  await rec("reset-password link without callbackURL", { path: "/reset-password/sometoken" });
  await rec("reset-password link untrusted callbackURL", { path: "/reset-password/sometoken?callbackURL=https%3A%2F%2Fevil.example%2F" });
  await rec("reset-password bad token", { method: "POST", path: "/reset-password", headers: origin, body: { newPassword: "a long new password", token: "nope" } });
  await rec("reset-password short password", { method: "POST", path: "/reset-password", headers: origin, body: { newPassword: "short", token: "nope" } });
  await rec("reset-password no token", { method: "POST", path: "/reset-password", headers: origin, body: { newPassword: "a long new password" } });
  await rec("change-email without session", { method: "POST", path: "/change-email", headers: origin, body: { newEmail: randomEmail() } });
  await rec("change-email same email", { method: "POST", path: "/change-email", headers: c3, body: { newEmail: email } });
  await rec("change-email bad email", { method: "POST", path: "/change-email", headers: c3, body: { newEmail: "nope" } });
  await rec("change-email taken email", { method: "POST", path: "/change-email", headers: c3, body: { newEmail: email2 } });
  await rec("change-email untrusted callbackURL", { method: "POST", path: "/change-email", headers: c3, body: { newEmail: randomEmail(), callbackURL: "https://evil.example/" } });
  await rec("delete-user wrong password", { method: "POST", path: "/delete-user", headers: c3, body: { password: "not the password" } });
  await rec("delete-user unknown token", { method: "POST", path: "/delete-user", headers: c3, body: { token: "0".repeat(32) } });
  await rec("delete-user/callback without session", { path: "/delete-user/callback?token=x" });
  await rec("delete-user/callback unknown token", { path: "/delete-user/callback?token=x", headers: c3 });
  await rec("delete-user/callback untrusted callbackURL", { path: "/delete-user/callback?token=x&callbackURL=https%3A%2F%2Fevil.example%2F", headers: c3 });
  return out;
}

// ---- compare ---------------------------------------------------------------------------------

const notes = [];
const strict = [];
let ba;
await step("reference Better-Auth server starts (own migrator, own database)", async () => {
  await migrateBA({ databaseUrl: BA_DB, secret: "diff-reference-secret-0123456789abcdefghijkl", baseURL: BA_URL });
  ba = await startBA({ databaseUrl: BA_DB, secret: "diff-reference-secret-0123456789abcdefghijkl", baseURL: BA_URL });
}, { fatal: true });

let baOut, lkOut;
await step("the scenario runs against both servers", async () => {
  baOut = await scenario(BA_URL, BA_DB);
  lkOut = await scenario(LK, LK_DB);
}, { fatal: true });
await ba.close();

// Differences already reported (issue 4 report); they are NOTEs unless COMPAT_STRICT=1, and a
// NOTE says so when one is no longer observed (then remove it here).
const KNOWN = {
  "update-user name wrong type": "Better-Auth accepts {name: 5} (200, stores \"5\"); latchkey: 400 VALIDATION_ERROR",
};
const STRICT = process.env.COMPAT_STRICT === "1";
const known = [];

const j = (v) => JSON.stringify(v);
for (let i = 0; i < baOut.length; i++) {
  const { label, r: b, extra } = baOut[i];
  const l = lkOut[i].r;
  if (lkOut[i].note) notes.push(`${label}: ${lkOut[i].note}`);
  const d = [];
  const soft = [];
  // latchkey's one deliberate header extension: answers that carry credentials (session
  // tokens, JWTs) are `cache-control: no-store`, where Better-Auth sends none.
  if (!extra && b.headers["cache-control"] === undefined && l.headers["cache-control"] === "no-store") {
    delete l.headers["cache-control"];
    notes.push(`${label}: latchkey adds cache-control: no-store (credentials in the answer)`);
  }
  if (extra) {
    if (b.status !== l.status) soft.push(`not implemented? BA ${b.status} ${j(shape(b.body))} / latchkey ${l.status} ${j(shape(l.body))}`);
  } else {
    if (b.status !== l.status) d.push(`status: BA ${b.status}, latchkey ${l.status}`);
    if (j(shape(b.body)) !== j(shape(l.body))) d.push(`body: BA ${j(shape(b.body))}\n          latchkey ${j(shape(l.body))}`);
    if (b.body?.message !== l.body?.message) soft.push(`message: BA ${j(b.body?.message)}, latchkey ${j(l.body?.message)}`);
    if (j(b.cookies) !== j(l.cookies)) d.push(`set-cookie: BA ${j(b.cookies)}\n          latchkey ${j(l.cookies)}`);
    if (j(Object.keys(b.headers).sort()) !== j(Object.keys(l.headers).sort())) d.push(`headers: BA ${j(b.headers)}, latchkey ${j(l.headers)}`);
    else if (b.headers.location !== l.headers.location) d.push(`location: BA ${b.headers.location}, latchkey ${l.headers.location}`);
    else if (j(b.headers["cache-control"]) !== j(l.headers["cache-control"])) soft.push(`cache-control: BA ${b.headers["cache-control"]}, latchkey ${l.headers["cache-control"]}`);
    if (j(b.expose) !== j(l.expose)) d.push(`access-control-expose-headers: BA ${j(b.expose)}, latchkey ${j(l.expose)}`);
    if ((b.contentType ?? "") !== (l.contentType ?? "")) soft.push(`content-type: BA ${j(b.contentType)}, latchkey ${j(l.contentType)}`);
  }
  if (d.length && KNOWN[label] && !STRICT) known.push(`${label} (${KNOWN[label]})\n        ${d.join("\n        ")}`);
  else if (d.length) strict.push(`${label}\n        ${d.join("\n        ")}`);
  else if (KNOWN[label]) notes.push(`${label}: known deviation no longer observed; remove it from KNOWN in diff.mjs`);
  if (soft.length) notes.push(`${label}: ${soft.join("; ")}`);
}

await step(`${baOut.length} exchanges: no strict wire differences from Better-Auth`, async () => {
  if (strict.length) throw new Error(`${strict.length} exchange(s) differ:\n  - ${strict.join("\n  - ")}`);
});
for (const k of known) console.log(`KNOWN ${k}`);
for (const n of notes) console.log(`NOTE ${n}`);
done("diff.mjs");
