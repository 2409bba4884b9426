// Suite 1: the official Better-Auth client (better-auth/client + jwtClient) against an auth
// server (latchkey-auth, or a real Better-Auth server for comparison), JWTs verified with jose.
//
// Environment:
//   AUTH_URL        base URL of the auth server (BETTER_AUTH_URL), e.g. http://127.0.0.1:3000
//   TRUSTED_ORIGIN  an extra origin the server trusts (BETTER_AUTH_TRUSTED_ORIGINS), optional
//   API_URL         latchkey-api base URL, optional: JWTs are also checked at GET /api/me
//   DATABASE_URL    the server's database, optional: enables the SESSION_NOT_FRESH check
//   JWT_ALG         expected JWS alg (EdDSA, RS256, ES256); default EdDSA
//   VERIFY_SECRET   the server's secret, optional: a verification token is signed with it (as
//                   Better-Auth signs them) and redeemed through verifyEmail

import pg from "pg";
import { SignJWT } from "jose";
import {
  assert, done, env, fails, follow, http, jwtHeader, makeClient, ok, query, randomEmail, step, verifyJwt,
} from "./lib.mjs";

const AUTH = env("AUTH_URL").replace(/\/$/, "");
const TRUSTED = process.env.TRUSTED_ORIGIN || "";
const API = (process.env.API_URL || "").replace(/\/$/, "");
const DB = process.env.DATABASE_URL || "";
const ALG = process.env.JWT_ALG || "EdDSA";
const VERIFY_SECRET = process.env.VERIFY_SECRET || "";
const ISS = new URL(AUTH).origin;
const JWKS = `${AUTH}/api/auth/jwks`;
const WELL_KNOWN = `${AUTH}/.well-known/jwks.json`;
const SKIP_WELL_KNOWN = process.env.SKIP_WELL_KNOWN === "1"; // for a real BA server
// The OpenID provider `corp` (oidc-provider on loopback), and users it knows: SOCIAL_EMAIL
// (subject SOCIAL_SUB, verified), SOCIAL_LINK_EMAIL (for link-social).
const OIDC_ISSUER = process.env.OIDC_ISSUER || "";
const SOCIAL_EMAIL = process.env.SOCIAL_EMAIL || "";
const SOCIAL_SUB = process.env.SOCIAL_SUB || "";
const SOCIAL_LINK_EMAIL = process.env.SOCIAL_LINK_EMAIL || "";

const PASSWORD = "correct horse battery";
const NEW_PASSWORD = "staple battery horse 2";
const email = randomEmail("client");
const mixedCaseEmail = email.replace(/^c/, "C").replace("@example", "@EXAMPLE");

const A = makeClient(AUTH); // browser-like: cookie jar + same-site Origin
let userId;
let tokenA;

async function checkJwt(token, what) {
  const header = jwtHeader(token);
  assert.equal(header.alg, ALG, `${what}: header alg`);
  assert.equal(header.typ, undefined, `${what}: Better-Auth JWTs carry no typ`);
  assert.ok(header.kid, `${what}: kid`);
  const { payload } = await verifyJwt(token, JWKS, ISS, { algorithms: [ALG] });
  assert.equal(payload.sub, userId, `${what}: sub`);
  assert.equal(payload.id, userId, `${what}: id`);
  assert.equal(payload.email, email, `${what}: email`);
  assert.equal(payload.exp - payload.iat, 900, `${what}: lifetime`);
  assert.equal(payload.iss, ISS);
  assert.equal(payload.aud, ISS);
  if (!SKIP_WELL_KNOWN) await verifyJwt(token, WELL_KNOWN, ISS, { algorithms: [ALG] });
  if (API) {
    const r = await http("GET", `${API}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `${what}: latchkey-api /api/me: ${r.text}`);
    const me = JSON.stringify(r.body);
    assert.ok(me.includes(userId), `${what}: /api/me should name the user: ${me}`);
  }
  return { header, payload };
}

await step("sign-up (mixed-case email) sets cookie + set-auth-token", async () => {
  const data = ok(await A.client.signUp.email({ name: "Ada", email: mixedCaseEmail, password: PASSWORD }), "signUp");
  assert.equal(data.user.email, email, "email is stored lower-cased");
  assert.equal(data.user.name, "Ada");
  assert.equal(data.user.emailVerified, false);
  assert.ok(data.user.createdAt instanceof Date, "client parses ISO dates into Date");
  assert.match(data.token, /^[A-Za-z0-9]{32}$/);
  assert.ok(A.jar.get("better-auth.session_token"), "session cookie set");
  assert.ok(A.last().headers.get("set-auth-token")?.startsWith(data.token + "."), "set-auth-token");
  userId = data.user.id;
  tokenA = data.token;
});

await step("sign-up error codes", async () => {
  const X = makeClient(AUTH);
  fails(await X.client.signUp.email({ name: "Dup", email: email.toUpperCase(), password: PASSWORD }),
    422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "duplicate (other case)");
  fails(await X.client.signUp.email({ name: "S", email: randomEmail(), password: "short" }), 400, "PASSWORD_TOO_SHORT");
  fails(await X.client.signUp.email({ name: "L", email: randomEmail(), password: "x".repeat(129) }), 400, "PASSWORD_TOO_LONG");
  fails(await X.client.signUp.email({ name: "E", email: "not-an-email", password: PASSWORD }), 400, "VALIDATION_ERROR", "bad email");
  fails(await X.client.signUp.email({ email: randomEmail(), password: PASSWORD }), 400, "VALIDATION_ERROR", "no name");
  // 128 is still allowed.
  ok(await X.client.signUp.email({ name: "Max", email: randomEmail("max"), password: "y".repeat(128) }), "128-char password");
});

await step("get-session returns session + user and a set-auth-jwt that jose verifies", async () => {
  const data = ok(await A.client.getSession(), "getSession");
  assert.ok(data, "a session");
  assert.equal(data.user.id, userId);
  assert.equal(data.session.userId, userId);
  assert.equal(data.session.token, tokenA);
  assert.ok(data.session.expiresAt instanceof Date);
  const days = (data.session.expiresAt - Date.now()) / 86400e3;
  assert.ok(days > 6.9 && days <= 7.01, `expiresAt ~7 days ahead, got ${days}`);
  const res = A.last();
  assert.equal(res.headers.get("cache-control"), "no-store");
  const jwt = res.headers.get("set-auth-jwt");
  assert.ok(jwt, "set-auth-jwt header");
  assert.match(res.headers.get("access-control-expose-headers") ?? "", /set-auth-jwt/i);
  await checkJwt(jwt, "set-auth-jwt");
});

await step("token() gives a JWT verified by jose (jwks + .well-known) and latchkey-api", async () => {
  const { token } = ok(await A.client.token(), "token");
  const { header } = await checkJwt(token, "/token");
  const jwks = ok(await A.client.jwks(), "jwks");
  const key = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(key, `kid ${header.kid} listed in /jwks ${JSON.stringify(jwks)}`);
  assert.equal(key.alg, ALG);
  if (!SKIP_WELL_KNOWN) {
    const wk = await http("GET", WELL_KNOWN);
    assert.equal(wk.status, 200);
    assert.ok(wk.body.keys.some((k) => k.kid === header.kid), ".well-known lists the kid");
  }
});

await step("update-user (name, image) then EMAIL_CAN_NOT_BE_UPDATED", async () => {
  const data = ok(await A.client.updateUser({ name: "Ada L.", image: "https://example.com/ada.png" }), "updateUser");
  assert.equal(data.status, true);
  const s = ok(await A.client.getSession());
  assert.equal(s.user.name, "Ada L.");
  assert.equal(s.user.image, "https://example.com/ada.png");
  fails(await A.client.updateUser({ email: randomEmail() }), 400, "EMAIL_CAN_NOT_BE_UPDATED");
  const jwt = A.last().headers.get("set-auth-jwt");
  if (jwt) await checkJwt(jwt, "jwt after update");
  const { token } = ok(await A.client.token());
  const { payload } = await checkJwt(token, "token after update");
  assert.equal(payload.name, "Ada L.", "JWT carries the updated name");
});

const B = makeClient(AUTH);
let tokenB;
await step("sign-in (upper-case email) on a second client; wrong password / unknown user", async () => {
  const data = ok(await B.client.signIn.email({ email: email.toUpperCase(), password: PASSWORD }), "signIn");
  assert.equal(data.redirect, false);
  assert.equal(data.user.id, userId);
  tokenB = data.token;
  assert.notEqual(tokenB, tokenA);
  const X = makeClient(AUTH);
  fails(await X.client.signIn.email({ email, password: "wrong password!" }), 401, "INVALID_EMAIL_OR_PASSWORD", "wrong pw");
  fails(await X.client.signIn.email({ email: randomEmail("nobody"), password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD", "unknown");
});

await step("sign-in with a malformed email: 400 INVALID_EMAIL (sign-up says VALIDATION_ERROR)", async () => {
  const X = makeClient(AUTH);
  fails(await X.client.signIn.email({ email: "nope", password: PASSWORD }), 400, "INVALID_EMAIL", "sign-in with a malformed email");
});

await step("list-sessions shows both; revoke-session kills B", async () => {
  const list = ok(await A.client.listSessions(), "listSessions");
  const tokens = list.map((s) => s.token);
  assert.ok(tokens.includes(tokenA) && tokens.includes(tokenB), `both sessions listed: ${tokens}`);
  assert.ok(list.every((s) => s.userId === userId));
  assert.equal(ok(await A.client.revokeSession({ token: tokenB })).status, true);
  assert.equal(ok(await B.client.getSession()), null, "B is signed out");
  assert.ok(ok(await A.client.getSession()), "A still signed in");
});

await step("revoke-other-sessions keeps the current one", async () => {
  const C = makeClient(AUTH);
  ok(await C.client.signIn.email({ email, password: PASSWORD }));
  assert.ok(ok(await C.client.getSession()));
  assert.equal(ok(await A.client.revokeOtherSessions()).status, true);
  assert.equal(ok(await C.client.getSession()), null, "C revoked");
  assert.ok(ok(await A.client.getSession()), "A kept");
  assert.equal(ok(await A.client.listSessions()).length, 1);
});

await step("origin checks: MISSING_OR_NULL_ORIGIN, INVALID_ORIGIN, trusted origin", async () => {
  A.state.sendOrigin = false;
  fails(await A.client.updateUser({ name: "no origin" }), 403, "MISSING_OR_NULL_ORIGIN", "cookie POST without Origin");
  A.state.sendOrigin = true;
  A.state.origin = "http://evil.example";
  fails(await A.client.updateUser({ name: "evil" }), 403, "INVALID_ORIGIN", "cookie POST from untrusted Origin");
  if (TRUSTED) {
    A.state.origin = TRUSTED;
    ok(await A.client.updateUser({ name: "Ada T." }), "update from BETTER_AUTH_TRUSTED_ORIGINS");
  }
  A.state.origin = AUTH;
  // Node fetch sends sec-fetch-mode: cors, so sign-in without Origin is refused.
  const X = makeClient(AUTH, { sendOrigin: false });
  fails(await X.client.signIn.email({ email, password: PASSWORD }), 403, "MISSING_OR_NULL_ORIGIN", "sign-in without Origin");
  const Y = makeClient(AUTH, { origin: "http://evil.example" });
  fails(await Y.client.signIn.email({ email, password: PASSWORD }), 403, "INVALID_ORIGIN", "sign-in from untrusted Origin");
  fails(await Y.client.signUp.email({ name: "n", email: randomEmail(), password: PASSWORD }), 403, "INVALID_ORIGIN", "sign-up from untrusted Origin");
});

await step("UNAUTHORIZED without a session", async () => {
  const X = makeClient(AUTH);
  fails(await X.client.token(), 401, "UNAUTHORIZED", "token");
  fails(await X.client.listSessions(), 401, "UNAUTHORIZED", "listSessions");
  fails(await X.client.updateUser({ name: "x" }), 401, "UNAUTHORIZED", "updateUser");
  fails(await X.client.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), 401, "UNAUTHORIZED", "changePassword");
  assert.equal(ok(await X.client.getSession()), null);
});

if (DB) {
  await step("SESSION_NOT_FRESH on list-sessions for a session created 2 days ago", async () => {
    const F = makeClient(AUTH);
    const { token } = ok(await F.client.signIn.email({ email, password: PASSWORD }));
    const db = new pg.Client({ connectionString: DB });
    await db.connect();
    await db.query(`UPDATE "session" SET "createdAt" = now() - interval '2 days' WHERE token = $1`, [token]);
    await db.end();
    fails(await F.client.listSessions(), 403, "SESSION_NOT_FRESH");
    ok(await F.client.signOut());
  });
}

await step("INVALID_CALLBACK_URL for an untrusted callbackURL", async () => {
  const X = makeClient(AUTH);
  fails(await X.client.signIn.email({ email, password: PASSWORD, callbackURL: "https://evil.example/after" }), 403, "INVALID_CALLBACK_URL", "sign-in");
  fails(await X.client.signUp.email({ name: "n", email: randomEmail(), password: PASSWORD, callbackURL: "//evil.example" }), 403, "INVALID_CALLBACK_URL", "sign-up");
});

if (DB) {
  await step("CREDENTIAL_ACCOUNT_NOT_FOUND on change-password for a user without a password account", async () => {
    const N = makeClient(AUTH);
    const u = { name: "No Password", email: randomEmail("nopw"), password: PASSWORD };
    const { user } = ok(await N.client.signUp.email(u));
    const db = new pg.Client({ connectionString: DB });
    await db.connect();
    // As for a user who only ever signed in with a social provider.
    await db.query(`DELETE FROM "account" WHERE "userId" = $1`, [user.id]);
    await db.end();
    fails(await N.client.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), 400, "CREDENTIAL_ACCOUNT_NOT_FOUND");
  });
}

if (process.env.RATE_LIMITED_AUTH_URL) {
  await step("429 with X-Retry-After from a rate-limited server, as the client sees it", async () => {
    const R = makeClient(process.env.RATE_LIMITED_AUTH_URL.replace(/\/$/, ""));
    const who = { email: randomEmail("limited"), password: PASSWORD };
    for (let i = 0; i < 3; i++) fails(await R.client.signIn.email(who), 401, "INVALID_EMAIL_OR_PASSWORD", `attempt ${i + 1}`);
    const e = fails(await R.client.signIn.email(who), 429, undefined, "attempt 4");
    assert.equal(e.message, "Too many requests. Please try again later.");
    const retry = Number(R.last().headers.get("x-retry-after"));
    assert.ok(retry >= 1, `X-Retry-After: ${retry}`);
  });
}

await step("change-password: INVALID_PASSWORD, PASSWORD_TOO_SHORT, then revokeOtherSessions", async () => {
  const D = makeClient(AUTH);
  ok(await D.client.signIn.email({ email, password: PASSWORD }));
  fails(await A.client.changePassword({ currentPassword: "not my password", newPassword: NEW_PASSWORD }), 400, "INVALID_PASSWORD");
  fails(await A.client.changePassword({ currentPassword: PASSWORD, newPassword: "short" }), 400, "PASSWORD_TOO_SHORT");
  fails(await A.client.changePassword({ currentPassword: PASSWORD, newPassword: "z".repeat(129) }), 400, "PASSWORD_TOO_LONG");
  const before = A.jar.get("better-auth.session_token");
  const data = ok(await A.client.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD, revokeOtherSessions: true }));
  assert.match(data.token ?? "", /^[A-Za-z0-9]{32}$/, "a new session token");
  assert.equal(data.user.id, userId);
  assert.notEqual(A.jar.get("better-auth.session_token"), before, "cookie replaced");
  assert.equal(ok(await A.client.getSession()).session.token, data.token);
  assert.equal(ok(await D.client.getSession()), null, "other session revoked");
  tokenA = data.token;
  const X = makeClient(AUTH);
  fails(await X.client.signIn.email({ email, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD", "old password");
  ok(await X.client.signIn.email({ email, password: NEW_PASSWORD }), "new password");
  // Without revokeOtherSessions: token null, X stays signed in.
  const d2 = ok(await A.client.changePassword({ currentPassword: NEW_PASSWORD, newPassword: PASSWORD }));
  assert.equal(d2.token, null);
  assert.ok(ok(await X.client.getSession()), "other session kept");
  ok(await X.client.signOut());
});

await step("bearer mode: sign-in, get-session, token, update-user, sign-out without cookies", async () => {
  const Bm = makeClient(AUTH, { bearer: true });
  const data = ok(await Bm.client.signIn.email({ email, password: PASSWORD }), "bearer signIn");
  assert.ok(Bm.state.token?.startsWith(data.token + "."), "token captured from set-auth-token");
  Bm.state.sendOrigin = false; // later calls need neither cookies nor Origin
  const s = ok(await Bm.client.getSession());
  assert.equal(s?.session.token, data.token);
  assert.ok(Bm.last().headers.get("set-auth-jwt"));
  const { token } = ok(await Bm.client.token());
  await checkJwt(token, "bearer /token");
  ok(await Bm.client.updateUser({ name: "Ada B." }), "bearer updateUser without Origin");
  assert.equal(ok(await A.client.getSession()).user.name, "Ada B.");
  // A raw (unsigned) session token is accepted as a bearer token too.
  const raw = await http("GET", `${AUTH}/api/auth/get-session`, { headers: { authorization: `Bearer ${data.token}` } });
  assert.equal(raw.status, 200);
  assert.equal(raw.body?.session?.token, data.token, "raw token accepted");
  // A bad signature is ignored (anonymous).
  const bad = await http("GET", `${AUTH}/api/auth/get-session`, {
    headers: { authorization: `Bearer ${data.token}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=` },
  });
  assert.equal(bad.status, 200);
  assert.equal(bad.body, null);
  assert.equal(ok(await Bm.client.signOut()).success, true);
  assert.equal(ok(await Bm.client.getSession()), null, "signed out");
});

await step("sign-out clears the cookie; revoke-sessions", async () => {
  const E = makeClient(AUTH);
  ok(await E.client.signIn.email({ email, password: PASSWORD }));
  assert.equal(ok(await A.client.signOut()).success, true);
  assert.equal(A.jar.get("better-auth.session_token"), undefined, "cookie expired");
  assert.equal(ok(await A.client.getSession()), null);
  assert.ok(ok(await E.client.getSession()), "E unaffected");
  assert.equal(ok(await E.client.revokeSessions()).status, true);
  assert.equal(ok(await E.client.getSession()), null);
});

await step("email verification and password reset through the official client", async () => {
  const C = makeClient(AUTH);
  const e = randomEmail("mail");
  const up = ok(await C.client.signUp.email({ name: "Mia", email: e, password: PASSWORD }), "signUp");
  const uid = up.user.id;
  const sent = ok(await C.client.sendVerificationEmail({ email: e, callbackURL: "/verified" }), "sendVerificationEmail");
  assert.equal(sent.status, true);
  fails(await C.client.sendVerificationEmail({ email: "someone-else@example.com" }), 400, "EMAIL_MISMATCH", "other email");
  fails(await C.client.verifyEmail({ query: { token: "not.a.token" } }), 401, "INVALID_TOKEN", "garbage token");
  if (VERIFY_SECRET) {
    // Signed as Better-Auth signs them (jose, HS256, the secret as the key).
    const key = new TextEncoder().encode(VERIFY_SECRET);
    const expired = await new SignJWT({ email: e, userId: uid }).setProtectedHeader({ alg: "HS256" })
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key);
    fails(await C.client.verifyEmail({ query: { token: expired } }), 401, "TOKEN_EXPIRED", "expired token");
    const token = await new SignJWT({ email: e, userId: uid }).setProtectedHeader({ alg: "HS256" })
      .setIssuedAt().setExpirationTime("1h").sign(key);
    const v = ok(await C.client.verifyEmail({ query: { token } }), "verifyEmail");
    assert.equal(v.status, true);
    assert.equal(v.user, null);
    assert.equal(ok(await C.client.getSession(), "getSession").user.emailVerified, true);
    fails(await C.client.sendVerificationEmail({ email: e }), 400, "EMAIL_ALREADY_VERIFIED", "verified");
  }
  if (DB) {
    const r = ok(await C.client.requestPasswordReset({ email: e, redirectTo: "/reset" }), "requestPasswordReset");
    assert.equal(r.status, true);
    const rows = await query(DB, `SELECT identifier FROM "verification" WHERE "value" = $1 AND identifier LIKE 'reset-password:%'`, [uid]);
    assert.equal(rows.length, 1, "one reset row");
    const token = rows[0].identifier.slice("reset-password:".length);
    assert.match(token, /^[A-Za-z0-9]{24}$/);
    fails(await C.client.resetPassword({ newPassword: "short", token }), 400, "PASSWORD_TOO_SHORT", "short");
    assert.equal(ok(await C.client.resetPassword({ newPassword: "reset password 123", token }), "resetPassword").status, true);
    fails(await C.client.resetPassword({ newPassword: "reset password 456", token }), 400, "INVALID_TOKEN", "reused");
    const D = makeClient(AUTH);
    fails(await D.client.signIn.email({ email: e, password: PASSWORD }), 401, "INVALID_EMAIL_OR_PASSWORD", "old password");
    ok(await D.client.signIn.email({ email: e, password: "reset password 123" }), "new password");
  }
});

await step("change email and delete the account through the official client", async () => {
  if (!VERIFY_SECRET || !DB) return;
  const C = makeClient(AUTH);
  const e = randomEmail("chg");
  const n = randomEmail("chg-new");
  const up = ok(await C.client.signUp.email({ name: "Noa", email: e, password: PASSWORD }), "signUp");
  const uid = up.user.id;
  fails(await C.client.changeEmail({ newEmail: e.toUpperCase() }), 400, undefined, "same email");
  await query(DB, `UPDATE "user" SET "emailVerified" = true WHERE id = $1`, [uid]);
  assert.equal(ok(await C.client.changeEmail({ newEmail: n, callbackURL: "/changed" }), "changeEmail").status, true);
  assert.equal(ok(await C.client.getSession()).user.email, e, "unchanged until the last link");
  // The two links, signed as Better-Auth signs them: either server finishes the other's flow.
  const key = new TextEncoder().encode(VERIFY_SECRET);
  const link = (requestType) => new SignJWT({ email: e, updateTo: n, requestType, userId: uid })
    .setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h").sign(key);
  assert.equal(ok(await C.client.verifyEmail({ query: { token: await link("change-email-confirmation") } }), "confirm").status, true);
  assert.equal(ok(await C.client.getSession()).user.email, e, "still unchanged after the confirmation");
  const last = await link("change-email-verification");
  assert.equal(ok(await C.client.verifyEmail({ query: { token: last } }), "verify new address").status, true);
  const after = ok(await C.client.getSession()).user;
  assert.equal(after.email, n);
  assert.equal(after.emailVerified, true);
  fails(await C.client.verifyEmail({ query: { token: last } }), 401, "INVALID_TOKEN", "replayed link");

  // Deletion: the mailed confirmation's row, then the token in the body.
  const d = ok(await C.client.deleteUser({ callbackURL: "/bye" }), "deleteUser");
  assert.deepEqual(d, { success: true, message: "Verification email sent" });
  const rows = await query(DB, `SELECT identifier FROM "verification" WHERE "value" = $1 AND identifier LIKE 'delete-account-%'`, [uid]);
  assert.equal(rows.length, 1, "one delete-account row");
  const token = rows[0].identifier.slice("delete-account-".length);
  assert.match(token, /^[0-9a-z]{32}$/);
  const other = makeClient(AUTH);
  ok(await other.client.signUp.email({ name: "Ola", email: randomEmail("other"), password: PASSWORD }), "other signUp");
  fails(await other.client.deleteUser({ token: "0".repeat(32) }), 404, "INVALID_TOKEN", "unknown token");
  const gone = ok(await C.client.deleteUser({ token }), "deleteUser with token");
  assert.deepEqual(gone, { success: true, message: "User deleted" });
  assert.equal(ok(await C.client.getSession()), null, "signed out");
  assert.equal((await query(DB, `SELECT count(*)::int AS n FROM "user" WHERE id = $1`, [uid]))[0].n, 0);
});

await step("social sign-in, accounts and provider tokens through the official client", async () => {
  if (!OIDC_ISSUER) return;
  const S = makeClient(AUTH);
  const begun = ok(await S.client.signIn.social({
    provider: "corp", callbackURL: "/dash", newUserCallbackURL: "/welcome", errorCallbackURL: "/oops",
    loginHint: SOCIAL_EMAIL, disableRedirect: true,
  }), "signIn.social");
  assert.equal(begun.redirect, false);
  assert.ok(begun.url.startsWith(`${OIDC_ISSUER}/auth?response_type=code&client_id=lk-corp&state=`), begun.url);
  assert.ok(S.jar.get("better-auth.state"), "the state cookie");
  const leaves = (u) => u.startsWith(AUTH) && !u.includes("/api/auth/");
  const end = await follow(begun.url, S.jar, leaves);
  assert.equal(end.url, `${AUTH}/welcome`, `a new user lands on newUserCallbackURL: ${JSON.stringify(end.hops)}`);
  const session = ok(await S.client.getSession(), "getSession");
  assert.equal(session.user.email, SOCIAL_EMAIL);
  assert.equal(session.user.emailVerified, true);
  const accounts = ok(await S.client.listAccounts(), "listAccounts");
  const corp = accounts.find((a) => a.providerId === "corp");
  assert.ok(corp, JSON.stringify(accounts));
  assert.equal(corp.accountId, SOCIAL_SUB);
  assert.equal(corp.accessToken, undefined, "no tokens in list-accounts");
  const t = ok(await S.client.getAccessToken({ accountId: corp.id }), "getAccessToken");
  assert.ok(typeof t.accessToken === "string" && t.accessToken.length > 10, JSON.stringify(t));
  const userinfo = await fetch(`${OIDC_ISSUER}/me`, { headers: { authorization: `Bearer ${t.accessToken}` } });
  assert.equal(userinfo.status, 200, "the access token works at the provider");
  const r = ok(await S.client.refreshToken({ accountId: corp.id }), "refreshToken");
  assert.ok(r.accessToken && r.accessToken !== t.accessToken, JSON.stringify(r));
  const info = ok(await S.client.accountInfo({ query: { accountId: corp.id } }), "accountInfo");
  assert.equal(info.user.email, SOCIAL_EMAIL);
  // A second sign-in: the same user, the callbackURL.
  const S2 = makeClient(AUTH);
  const again = ok(await S2.client.signIn.social({ provider: "corp", callbackURL: "/dash", newUserCallbackURL: "/welcome", loginHint: SOCIAL_EMAIL, disableRedirect: true }));
  assert.equal((await follow(again.url, S2.jar, leaves)).url, `${AUTH}/dash`);
  // link-social for an email/password user with the same address at the provider.
  if (SOCIAL_LINK_EMAIL) {
    const L = makeClient(AUTH);
    ok(await L.client.signUp.email({ name: "Lin", email: SOCIAL_LINK_EMAIL, password: PASSWORD }), "signUp");
    const linked = ok(await L.client.linkSocial({ provider: "corp", callbackURL: "/linked", loginHint: SOCIAL_LINK_EMAIL, disableRedirect: true }), "linkSocial");
    assert.equal((await follow(linked.url, L.jar, leaves)).url, `${AUTH}/linked`);
    const mine = ok(await L.client.listAccounts(), "listAccounts after link");
    assert.deepEqual(mine.map((a) => a.providerId).sort(), ["corp", "credential"]);
    const linkedCorp = mine.find((a) => a.providerId === "corp");
    assert.equal(ok(await L.client.unlinkAccount({ accountId: linkedCorp.id }), "unlinkAccount").status, true);
    assert.deepEqual(ok(await L.client.listAccounts()).map((a) => a.providerId), ["credential"]);
    const credential = ok(await L.client.listAccounts()).find((a) => a.providerId === "credential");
    fails(await L.client.unlinkAccount({ accountId: credential.id }), 400, "FAILED_TO_UNLINK_LAST_ACCOUNT", "last account");
  }
  fails(await S.client.signIn.social({ provider: "nope" }), 404, "PROVIDER_NOT_FOUND", "unknown provider");
});

await step("HTTP conventions the client relies on (404, 415, error shape)", async () => {
  const r404 = await http("GET", `${AUTH}/api/auth/no-such-endpoint`);
  assert.equal(r404.status, 404);
  const r415 = await http("POST", `${AUTH}/api/auth/update-user`, { headers: { "content-type": "text/plain" }, body: "x" });
  assert.equal(r415.status, 415);
  assert.equal(r415.body?.code, "UNSUPPORTED_MEDIA_TYPE");
  const badJson = await http("POST", `${AUTH}/api/auth/sign-in/email`, { headers: { origin: AUTH }, body: "{nope" });
  assert.equal(badJson.status, 400);
  assert.equal(typeof badJson.body?.message, "string");
});

done("client.mjs");
