// Suite 2a: a database created and filled by a real Better-Auth server is taken over by
// latchkey-auth. Three phases, run by tests/tests/compat.rs around the daemons:
//
//   node from-ba.mjs fill     Better-Auth (its own migrator, in-process server on the port of
//                             BETTER_AUTH_URL) signs users up, keeps a cookie, a bearer token and
//                             a JWT it signed; writes STATE_FILE; stops.
//   node from-ba.mjs check    latchkey-auth (AUTH_URL, same DB, same secret, same URL) and
//                             latchkey-api (API_URL) are up: old passwords, cookies, bearer tokens
//                             and JWTs work, hashes become $argon2id$, and latchkey signs with BA's
//                             key. Then a Better-Auth server runs beside latchkey on the same DB
//                             (zero-downtime switch): sessions cross over both ways.
//   node from-ba.mjs rotated  after `latchkey-auth keys rotate`: a new kid signs, BA's key is
//                             still published and its old JWT still verifies.
//
// Environment: DATABASE_URL, BETTER_AUTH_SECRET, BETTER_AUTH_URL (fill), AUTH_URL, API_URL,
// STATE_FILE, JWT_ALG (default EdDSA), BA_SIDE_PORT (check: a free port for the side-by-side BA).

import fs from "node:fs";
import { migrateBA, sentMail, startBA } from "./ba.mjs";
import {
  assert, credentialHash, done, env, fails, follow, http, jwtHeader, makeClient, ok, query, randomEmail, step, verifyJwt,
} from "./lib.mjs";

const phase = process.argv[2];
const DB = env("DATABASE_URL");
const STATE_FILE = env("STATE_FILE");
const ALG = process.env.JWT_ALG || "EdDSA";

const sql = (text, params) => query(DB, text, params);
const passwordHash = (userId) => credentialHash(DB, userId);

const SCRYPT_RE = /^[0-9a-f]{32}:[0-9a-f]{128}$/;

async function me(api, jwt) {
  return http("GET", `${api}/api/me`, { headers: { authorization: `Bearer ${jwt}` } });
}

if (phase === "fill") {
  const secret = env("BETTER_AUTH_SECRET");
  const baseURL = env("BETTER_AUTH_URL").replace(/\/$/, "");
  const state = { baseURL, users: [] };
  let ba;
  await step("Better-Auth's own migrator creates the schema", async () => {
    const plan = await migrateBA({ databaseUrl: DB, secret, baseURL, alg: ALG });
    assert.deepEqual(plan.toBeCreated.sort(), ["account", "jwks", "session", "user", "verification"]);
  }, { fatal: true });
  await step("a real Better-Auth server starts", async () => {
    ba = await startBA({ databaseUrl: DB, secret, baseURL, alg: ALG });
  }, { fatal: true });

  await step("users sign up through Better-Auth (HTTP client and auth.api)", async () => {
    const users = [
      { name: "Alice", email: randomEmail("alice"), password: "alice password 1" },
      { name: "Bob", email: randomEmail("bob"), password: "bob password 22" },
      // NFKC: the ligature "ﬁ" is hashed as "fi".
      { name: "Zoë", email: randomEmail("zoe"), password: "ﬁve épées ünïcode" },
    ];
    const A = makeClient(baseURL);
    const a = ok(await A.client.signUp.email({ ...users[0], email: users[0].email.toUpperCase() }), "alice signUp");
    users[0].id = a.user.id;
    assert.equal(a.user.email, users[0].email);
    const B = makeClient(baseURL, { bearer: true });
    const b = ok(await B.client.signUp.email(users[1]), "bob signUp");
    users[1].id = b.user.id;
    const z = await ba.auth.api.signUpEmail({ body: users[2] });
    users[2].id = z.user.id;
    state.users = users;
    state.aliceCookie = A.jar.header();
    state.aliceToken = a.token;
    assert.match(state.aliceCookie, /better-auth\.session_token=/);
    state.bobBearer = B.state.token;
    assert.ok(state.bobBearer?.includes("."), "bob's set-auth-token");
    // Sign in once more so each user has a second (sign-in) session too.
    ok(await makeClient(baseURL).client.signIn.email({ email: users[0].email, password: users[0].password }));
    for (const u of users) assert.match(await passwordHash(u.id), SCRYPT_RE, `${u.name}'s hash is BA scrypt`);
  }, { fatal: true });

  await step("Better-Auth signs JWTs (its key is created lazily)", async () => {
    const A = makeClient(baseURL);
    A.jar.cookies.set("better-auth.session_token", state.aliceCookie.split("=").slice(1).join("="));
    const { token } = ok(await A.client.token(), "token");
    const s = ok(await A.client.getSession(), "getSession");
    assert.equal(s.user.id, state.users[0].id);
    state.jwt = token;
    state.jwtFromHeader = A.last().headers.get("set-auth-jwt");
    const header = jwtHeader(token);
    assert.equal(header.alg, ALG);
    const rows = await sql(`SELECT id, alg, crv, "privateKey" FROM "jwks"`);
    assert.equal(rows.length, 1, "BA made exactly one key");
    assert.equal(rows[0].id, header.kid);
    assert.match(rows[0].privateKey, /^"[0-9a-f]+"$/, "BA's encrypted private key format");
    state.kid = header.kid;
    state.jwksEntry = ok(await A.client.jwks()).keys.find((k) => k.kid === header.kid);
    await verifyJwt(token, `${baseURL}/api/auth/jwks`, new URL(baseURL).origin, { algorithms: [ALG] });
  }, { fatal: true });

  await ba.close();
  fs.writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
  done("from-ba.mjs fill");
}

if (phase === "check") {
  const AUTH = env("AUTH_URL").replace(/\/$/, "");
  const API = env("API_URL").replace(/\/$/, "");
  const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8"));
  const ISS = new URL(AUTH).origin;
  const JWKS = `${AUTH}/api/auth/jwks`;
  assert.equal(state.baseURL, AUTH, "latchkey must take over Better-Auth's URL");
  const [alice, bob, zoe] = state.users;

  await step("latchkey's JWKS publishes Better-Auth's key (same kid)", async () => {
    const j = await http("GET", JWKS);
    assert.equal(j.status, 200);
    const key = j.body.keys.find((k) => k.kid === state.kid);
    assert.ok(key, `kid ${state.kid} in ${j.text}`);
    assert.equal(key.alg, ALG);
    assert.deepEqual(key, state.jwksEntry, "the JWKS entry is exactly the one Better-Auth published");
    const wk = await http("GET", `${AUTH}/.well-known/jwks.json`);
    assert.ok(wk.body.keys.some((k) => k.kid === state.kid), ".well-known too");
    const rows = await sql(`SELECT count(*)::int AS n FROM "jwks"`);
    assert.equal(rows[0].n, 1, "latchkey did not mint a key of its own");
  });

  await step("a JWT Better-Auth signed before the switch verifies (jose + latchkey-api /api/me)", async () => {
    for (const t of [state.jwt, state.jwtFromHeader]) {
      const { payload } = await verifyJwt(t, JWKS, ISS, { algorithms: [ALG] });
      assert.equal(payload.sub, alice.id);
      const r = await me(API, t);
      assert.equal(r.status, 200, `/api/me: ${r.status} ${r.text}`);
      assert.ok(r.text.includes(alice.id), r.text);
    }
  });

  await step("Better-Auth's session cookie is still valid on latchkey's get-session", async () => {
    const r = await http("GET", `${AUTH}/api/auth/get-session`, { headers: { cookie: state.aliceCookie } });
    assert.equal(r.status, 200);
    assert.ok(r.body, `a session, got ${r.text}`);
    assert.equal(r.body.user.id, alice.id);
    assert.equal(r.body.session.token, state.aliceToken);
    const jwt = r.headers.get("set-auth-jwt");
    assert.ok(jwt, "set-auth-jwt");
    assert.equal(jwtHeader(jwt).kid, state.kid, "latchkey signs with Better-Auth's key");
    await verifyJwt(jwt, JWKS, ISS, { algorithms: [ALG] });
    assert.equal((await me(API, jwt)).status, 200);
  });

  await step("Better-Auth's bearer token (set-auth-token) works on latchkey", async () => {
    const B = makeClient(AUTH, { bearer: true, sendOrigin: false });
    B.state.token = state.bobBearer;
    const s = ok(await B.client.getSession());
    assert.equal(s?.user.id, bob.id);
    const { token } = ok(await B.client.token());
    assert.equal(jwtHeader(token).kid, state.kid);
    assert.equal((await me(API, token)).status, 200);
  });

  await step("old users sign in with their old passwords; hashes are rehashed to $argon2id$", async () => {
    for (const u of state.users) {
      assert.match(await passwordHash(u.id), SCRYPT_RE, `${u.name}: untouched before sign-in`);
      const X = makeClient(AUTH);
      fails(await X.client.signIn.email({ email: u.email, password: u.password + "x" }), 401, "INVALID_EMAIL_OR_PASSWORD", `${u.name} wrong pw`);
      assert.match(await passwordHash(u.id), SCRYPT_RE, `${u.name}: a failed sign-in does not rehash`);
      const d = ok(await X.client.signIn.email({ email: u.email.toUpperCase(), password: u.password }), `${u.name} signIn`);
      assert.equal(d.user.id, u.id);
      const h = await passwordHash(u.id);
      assert.ok(h.startsWith("$argon2id$"), `${u.name}: rehashed, got ${h.slice(0, 20)}…`);
      // …and the argon2id hash verifies too.
      ok(await makeClient(AUTH).client.signIn.email({ email: u.email, password: u.password }), `${u.name} signIn after rehash`);
      fails(await makeClient(AUTH).client.signIn.email({ email: u.email, password: "wrong password" }), 401, "INVALID_EMAIL_OR_PASSWORD");
    }
    // NFKC: "ﬁ" and "fi" are the same password.
    ok(await makeClient(AUTH).client.signIn.email({ email: zoe.email, password: zoe.password.replace("ﬁ", "fi") }), "NFKC-equivalent password");
  });

  await step("new tokens from latchkey carry Better-Auth's kid", async () => {
    const A = makeClient(AUTH);
    ok(await A.client.signIn.email({ email: alice.email, password: alice.password }));
    const { token } = ok(await A.client.token());
    assert.equal(jwtHeader(token).kid, state.kid);
    const { payload } = await verifyJwt(token, JWKS, ISS, { algorithms: [ALG] });
    assert.equal(payload.sub, alice.id);
    assert.equal((await me(API, token)).status, 200);
  });

  // Zero-downtime switch: Better-Auth and latchkey on one database behind one public URL.
  const sidePort = process.env.BA_SIDE_PORT;
  if (sidePort) {
    let ba;
    const BA = `http://127.0.0.1:${sidePort}`;
    await step("side by side: a Better-Auth server on the same DB (same URL config) starts", async () => {
      ba = await startBA({ databaseUrl: DB, secret: env("BETTER_AUTH_SECRET"), baseURL: AUTH, listenPort: sidePort, alg: ALG });
    });
    if (ba) {
      await step("side by side: sessions cross over both ways, JWTs share the kid", async () => {
        const L = makeClient(AUTH);
        ok(await L.client.signIn.email({ email: bob.email, password: bob.password }), "sign-in on latchkey");
        const r = await http("GET", `${BA}/api/auth/get-session`, { headers: { cookie: L.jar.header() } });
        assert.equal(r.body?.user?.id, bob.id, `latchkey cookie on BA: ${r.text}`);
        assert.equal(jwtHeader(r.headers.get("set-auth-jwt")).kid, state.kid, "BA signs with the shared key");
        assert.equal((await me(API, r.headers.get("set-auth-jwt"))).status, 200);
        const u = { name: "Side", email: randomEmail("side"), password: "side password 1" };
        const S = makeClient(BA, { origin: AUTH });
        ok(await S.client.signUp.email(u), "sign-up on BA");
        const r2 = await http("GET", `${AUTH}/api/auth/get-session`, { headers: { cookie: S.jar.header() } });
        assert.equal(r2.body?.user?.email, u.email, `BA cookie on latchkey: ${r2.text}`);
        ok(await makeClient(AUTH).client.signIn.email(u), "BA-made user signs in on latchkey");
      });
      await step("side by side: a reset requested on Better-Auth finishes on latchkey, and the reverse", async () => {
        const resetRow = async (userId) => {
          const rows = await sql(`SELECT identifier FROM "verification" WHERE "value" = $1 AND identifier LIKE 'reset-password:%'`, [userId]);
          assert.equal(rows.length, 1, `one reset row for ${userId}`);
          return rows[0].identifier.slice("reset-password:".length);
        };
        const u = { name: "Reset", email: randomEmail("reset"), password: "reset password 0" };
        const S = makeClient(BA, { origin: AUTH });
        const id = ok(await S.client.signUp.email(u), "sign-up on BA").user.id;
        ok(await S.client.requestPasswordReset({ email: u.email, redirectTo: "/reset" }), "requestPasswordReset on BA");
        const token = await resetRow(id);
        const link = await fetch(`${AUTH}/api/auth/reset-password/${token}?callbackURL=%2Freset`, { redirect: "manual" });
        assert.equal(link.status, 302);
        assert.equal(link.headers.get("location"), `${AUTH}/reset?token=${token}`, "latchkey redirects with BA's token");
        const L = makeClient(AUTH);
        ok(await L.client.resetPassword({ newPassword: "reset password 1", token }), "resetPassword on latchkey");
        ok(await L.client.signIn.email({ email: u.email, password: "reset password 1" }), "new password on latchkey");
        // The other way: requested on latchkey, finished on Better-Auth (which writes scrypt,
        // so latchkey still signs the user in).
        ok(await L.client.requestPasswordReset({ email: u.email }), "requestPasswordReset on latchkey");
        const token2 = await resetRow(id);
        ok(await S.client.resetPassword({ newPassword: "reset password 2", token: token2 }), "resetPassword on BA");
        fails(await L.client.resetPassword({ newPassword: "reset password 3", token: token2 }), 400, "INVALID_TOKEN", "used on BA");
        ok(await makeClient(AUTH).client.signIn.email({ email: u.email, password: "reset password 2" }), "BA's new password on latchkey");
      });
      if (process.env.OIDC_ISSUER) await step("side by side: a social sign-in started on Better-Auth finishes on latchkey and the reverse; each reads the other's sealed provider tokens", async () => {
        const issuer = process.env.OIDC_ISSUER;
        const leaves = (u) => !u.includes("/api/auth/") && (u.startsWith(AUTH) || u.startsWith(BA));
        const works = async (accessToken, what) => {
          const r = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
          assert.equal(r.status, 200, `${what}: the access token works at the provider`);
        };
        // Started on Better-Auth (its state row, its signed state cookie, its PKCE verifier and
        // nonce); the provider sends the browser to the public URL, which is latchkey.
        const S = makeClient(BA, { origin: AUTH });
        const begun = ok(await S.client.signIn.social({ provider: "corp", callbackURL: "/dash", loginHint: process.env.SOCIAL_EMAIL, disableRedirect: true }), "signIn.social on BA");
        const end = await follow(begun.url, S.jar, leaves);
        assert.equal(end.url, `${AUTH}/dash`, `finished on latchkey: ${JSON.stringify(end.hops)}`);
        const callbackHop = end.hops.find((h) => h.url.startsWith(`${AUTH}/api/auth/callback/corp`));
        assert.ok(callbackHop, "latchkey answered the callback");
        const L = makeClient(AUTH);
        L.jar.cookies = new Map(S.jar.cookies);
        const accounts = ok(await L.client.listAccounts(), "listAccounts on latchkey");
        const corp = accounts.find((a) => a.providerId === "corp");
        assert.equal(corp.accountId, process.env.SOCIAL_SUB);
        const stored = (await sql(`SELECT "accessToken" FROM "account" WHERE id = $1`, [corp.id]))[0].accessToken;
        assert.match(stored, /^[0-9a-f]+$/, "latchkey sealed the token");
        // Better-Auth (encryptOAuthTokens) opens latchkey's sealed token.
        const onBA = makeClient(BA, { origin: AUTH });
        onBA.jar.cookies = new Map(S.jar.cookies);
        const fromBA = ok(await onBA.client.getAccessToken({ accountId: corp.id }), "getAccessToken on BA");
        await works(fromBA.accessToken, "latchkey's token read by BA");

        // The reverse: started on latchkey, the callback answered by Better-Auth.
        const L2 = makeClient(AUTH);
        const begun2 = ok(await L2.client.signIn.social({ provider: "corp", callbackURL: "/dash", loginHint: process.env.SOCIAL_LINK_EMAIL, disableRedirect: true }), "signIn.social on latchkey");
        const atCallback = await follow(begun2.url, L2.jar, (u) => u.startsWith(`${AUTH}/api/auth/callback/corp`));
        const onBaSide = atCallback.url.replace(AUTH, BA);
        const end2 = await follow(onBaSide, L2.jar, leaves);
        assert.equal(end2.url, `${BA}/dash`, `finished on BA: ${JSON.stringify(end2.hops)}`);
        const mine = ok(await L2.client.listAccounts(), "listAccounts on latchkey (BA's session)");
        const corp2 = mine.find((a) => a.providerId === "corp");
        const stored2 = (await sql(`SELECT "accessToken" FROM "account" WHERE id = $1`, [corp2.id]))[0].accessToken;
        assert.match(stored2, /^[0-9a-f]+$/, "Better-Auth sealed the token");
        const fromLatchkey = ok(await L2.client.getAccessToken({ accountId: corp2.id }), "getAccessToken on latchkey");
        await works(fromLatchkey.accessToken, "BA's token read by latchkey");
      });
      if (process.env.AUTH_LOG) await step("side by side: a change of address and a deletion mailed by Better-Auth finish on latchkey", async () => {
        const u = { name: "Cleo", email: randomEmail("cleo"), password: "cleo password 0" };
        const S = makeClient(BA, { origin: AUTH });
        const id = ok(await S.client.signUp.email(u), "sign-up on BA").user.id;
        await sql(`UPDATE "user" SET "emailVerified" = true WHERE id = $1`, [id]);
        const next = randomEmail("cleo-new");
        ok(await S.client.changeEmail({ newEmail: next, callbackURL: "/changed" }), "changeEmail on BA");
        const confirm = sentMail.filter((m) => m.kind === "change-email" && m.email === u.email).pop();
        assert.ok(confirm, "Better-Auth mailed the old address");
        assert.equal(confirm.newEmail, next);
        // Better-Auth's first link, opened on latchkey, mails latchkey's second link (to its log).
        const r1 = await fetch(confirm.url, { redirect: "manual" });
        assert.equal(r1.status, 302, "latchkey takes Better-Auth's confirmation token");
        assert.equal(r1.headers.get("location"), "/changed");
        assert.equal((await sql(`SELECT email FROM "user" WHERE id = $1`, [id]))[0].email, u.email, "unchanged until the last link");
        const second = await verifyLinkFromLog((claims) => claims.updateTo === next);
        const L = makeClient(AUTH);
        ok(await L.client.signIn.email(u), "sign-in on latchkey");
        const r2 = await fetch(second, { redirect: "manual", headers: { cookie: L.jar.header() } });
        assert.equal(r2.status, 302, "latchkey's second link");
        const row = (await sql(`SELECT email, "emailVerified" FROM "user" WHERE id = $1`, [id]))[0];
        assert.deepEqual(row, { email: next, emailVerified: true });
        // (On latchkey: its sign-in above rehashed the password to argon2id, which BA cannot read.)
        ok(await makeClient(AUTH).client.signIn.email({ email: next, password: u.password }), "the new address signs in");

        // Deletion: Better-Auth mails the link, latchkey's callback deletes.
        ok(await S.client.deleteUser({ callbackURL: "/bye" }), "deleteUser on BA");
        const del = sentMail.filter((m) => m.kind === "delete-account" && m.email === next).pop();
        assert.ok(del, "Better-Auth mailed the deletion link");
        assert.ok(del.url.startsWith(`${AUTH}/api/auth/delete-user/callback?token=`), del.url);
        const r3 = await fetch(del.url, { redirect: "manual", headers: { cookie: L.jar.header() } });
        assert.equal(r3.status, 302, `latchkey deletes with Better-Auth's token: ${await r3.text()}`);
        assert.equal(r3.headers.get("location"), "/bye");
        assert.equal((await sql(`SELECT count(*)::int AS n FROM "user" WHERE id = $1`, [id]))[0].n, 0);
      });
      await step("side by side: a verification link mailed by Better-Auth verifies on latchkey", async () => {
        const u = { name: "Vera", email: randomEmail("vera"), password: "vera password 0" };
        const S = makeClient(BA, { origin: AUTH });
        const id = ok(await S.client.signUp.email(u), "sign-up on BA").user.id;
        ok(await S.client.sendVerificationEmail({ email: u.email, callbackURL: "/verified" }), "sendVerificationEmail on BA");
        const mail = sentMail.filter((m) => m.kind === "verify" && m.email === u.email).pop();
        assert.ok(mail, "Better-Auth's callback got the link");
        assert.ok(mail.url.startsWith(`${AUTH}/api/auth/verify-email?token=`), mail.url);
        const r = await fetch(mail.url, { redirect: "manual" });
        assert.equal(r.status, 302, "latchkey takes Better-Auth's token");
        assert.equal(r.headers.get("location"), "/verified");
        const rows = await sql(`SELECT "emailVerified" FROM "user" WHERE id = $1`, [id]);
        assert.equal(rows[0].emailVerified, true);
      });
      if (process.env.AUTH_LOG) await step("side by side: a verification link mailed by latchkey verifies on Better-Auth", async () => {
        const u = { name: "Lena", email: randomEmail("lena"), password: "lena password 0" };
        const L = makeClient(AUTH);
        const id = ok(await L.client.signUp.email(u), "sign-up on latchkey").user.id;
        ok(await L.client.sendVerificationEmail({ email: u.email, callbackURL: "/verified" }), "sendVerificationEmail on latchkey");
        const link = await verifyLinkFromLog((claims) => claims.email === u.email);
        const r = await fetch(link.replace(AUTH, BA), { redirect: "manual" });
        assert.equal(r.status, 302, "Better-Auth takes latchkey's token");
        assert.equal(r.headers.get("location"), "/verified");
        const rows = await sql(`SELECT "emailVerified" FROM "user" WHERE id = $1`, [id]);
        assert.equal(rows[0].emailVerified, true);
      });
      await step("side by side: an $argon2id$ hash written by latchkey cannot be used by Better-Auth (documented: use LATCHKEY_PASSWORD_HASH=scrypt while both run)", async () => {
        const S = makeClient(BA, { origin: AUTH });
        const res = await S.client.signIn.email({ email: alice.email, password: alice.password });
        assert.equal(res.error?.status, 500, `BA's answer to an argon2id hash: ${JSON.stringify(res.error)}`);
        console.log(`     (Better-Auth's answer to an argon2id hash: ${res.error.status} ${JSON.stringify(res.error)})`);
      });
      await ba.close();
    }
  }
  done("from-ba.mjs check");
}

/** The first verify-email link in latchkey's log (LATCHKEY_MAIL_TRANSPORT=log) whose token's
 * claims satisfy `wanted`; waits up to 10 s for the outbox worker. */
async function verifyLinkFromLog(wanted) {
  for (let i = 0; i < 100; i++) {
    const log = fs.readFileSync(process.env.AUTH_LOG, "utf8");
    const link = [...log.matchAll(/http:\/\/\S+\/api\/auth\/verify-email\?token=([\w-]+\.[\w-]+\.[\w-]+)\S*/g)]
      .find((m) => wanted(JSON.parse(Buffer.from(m[1].split(".")[1], "base64url"))))?.[0];
    if (link) return link;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail("latchkey logged no such link");
}

if (phase === "rotated") {
  const AUTH = env("AUTH_URL").replace(/\/$/, "");
  const API = env("API_URL").replace(/\/$/, "");
  const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8"));
  const ISS = new URL(AUTH).origin;
  const JWKS = `${AUTH}/api/auth/jwks`;
  const alice = state.users[0];
  await step("after `keys rotate` a new kid signs; Better-Auth's key stays published", async () => {
    const A = makeClient(AUTH);
    ok(await A.client.signIn.email({ email: alice.email, password: alice.password }));
    const { token } = ok(await A.client.token());
    const kid = jwtHeader(token).kid;
    assert.notEqual(kid, state.kid, "signed with the new key");
    const j = await http("GET", JWKS);
    const kids = j.body.keys.map((k) => k.kid);
    assert.ok(kids.includes(kid) && kids.includes(state.kid), `both kids published: ${kids}`);
    await verifyJwt(token, JWKS, ISS, { algorithms: [ALG] });
    assert.equal((await me(API, token)).status, 200, "new-key JWT at latchkey-api");
  });
  await step("the JWT Better-Auth signed still verifies after rotation (grace period)", async () => {
    await verifyJwt(state.jwt, JWKS, ISS, { algorithms: [ALG] });
    const r = await me(API, state.jwt);
    assert.equal(r.status, 200, `/api/me: ${r.text}`);
  });
  // MIGRATING.md: while both run, Better-Auth signs with the key latchkey rotated to (it picks
  // the newest unexpired key of its algorithm, re-read on every signature).
  const sidePort = process.env.BA_SIDE_PORT;
  if (sidePort) {
    await step("a Better-Auth server beside latchkey signs with the key latchkey rotated to", async () => {
      const ba = await startBA({ databaseUrl: DB, secret: env("BETTER_AUTH_SECRET"), baseURL: AUTH, listenPort: sidePort, alg: ALG });
      try {
        const A = makeClient(AUTH);
        ok(await A.client.signIn.email({ email: alice.email, password: alice.password }));
        const { token } = ok(await A.client.token());
        const r = await http("GET", `http://127.0.0.1:${sidePort}/api/auth/get-session`, { headers: { cookie: A.jar.header() } });
        assert.equal(r.status, 200, r.text);
        const baJwt = r.headers.get("set-auth-jwt");
        assert.ok(baJwt, "Better-Auth sent set-auth-jwt");
        assert.equal(jwtHeader(baJwt).kid, jwtHeader(token).kid, "Better-Auth signs with latchkey's new key");
        assert.notEqual(jwtHeader(baJwt).kid, state.kid);
        assert.equal((await me(API, baJwt)).status, 200);
      } finally {
        await ba.close();
      }
    });
  }
  done("from-ba.mjs rotated");
}

console.error(`usage: node from-ba.mjs fill|check|rotated`);
process.exit(2);
