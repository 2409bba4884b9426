// Suite 2b: a database created by latchkey's migrations and filled by latchkey-auth (with
// LATCHKEY_PASSWORD_HASH=scrypt) serves a real Better-Auth server. Two phases, run by
// tests/tests/compat.rs around the daemons:
//
//   node to-ba.mjs fill    latchkey-auth is up (AUTH_URL): users sign up / change password
//                          through the official client; hashes must be Better-Auth scrypt;
//                          a cookie, a bearer token and a JWT are kept in STATE_FILE.
//   node to-ba.mjs check   latchkey-auth is stopped; a real Better-Auth server takes over the
//                          same DB, secret and URL: its migrator finds nothing to do, users sign
//                          in, latchkey's cookie and bearer token work, Better-Auth signs with
//                          latchkey's key (same kid), and latchkey-api (API_URL, optional) keeps
//                          accepting tokens.
//
// Environment: DATABASE_URL, STATE_FILE, AUTH_URL (fill), BETTER_AUTH_SECRET and
// BETTER_AUTH_URL (check), API_URL (check, optional), JWT_ALG (default EdDSA).

import fs from "node:fs";
import { migrateBA, startBA } from "./ba.mjs";
import {
  assert, credentialHash, done, env, fails, http, jwtHeader, makeClient, ok, query, randomEmail, step, verifyJwt,
} from "./lib.mjs";

const phase = process.argv[2];
const DB = env("DATABASE_URL");
const STATE_FILE = env("STATE_FILE");
const ALG = process.env.JWT_ALG || "EdDSA";
const SCRYPT_RE = /^[0-9a-f]{32}:[0-9a-f]{128}$/;

const sql = (text, params) => query(DB, text, params);
const passwordHash = (userId) => credentialHash(DB, userId);

if (phase === "fill") {
  const AUTH = env("AUTH_URL").replace(/\/$/, "");
  const state = { baseURL: AUTH, users: [] };
  await step("users sign up through latchkey-auth; LATCHKEY_PASSWORD_HASH=scrypt writes Better-Auth hashes", async () => {
    const users = [
      { name: "Carol", email: randomEmail("carol"), password: "carol password 1" },
      { name: "Dave", email: randomEmail("dave"), password: "dave password 22" },
      { name: "Ëve", email: randomEmail("eve"), password: "ﬁve épées ünïcode" },
    ];
    const C = makeClient(AUTH);
    const c = ok(await C.client.signUp.email(users[0]), "carol signUp");
    users[0].id = c.user.id;
    state.carolCookie = C.jar.header();
    state.carolToken = c.token;
    const D = makeClient(AUTH, { bearer: true });
    const d = ok(await D.client.signUp.email({ ...users[1], password: "temporary password" }), "dave signUp");
    users[1].id = d.user.id;
    // A password written by change-password must be scrypt too.
    D.state.sendOrigin = false;
    ok(await D.client.changePassword({ currentPassword: "temporary password", newPassword: users[1].password }), "dave changePassword");
    state.daveBearer = D.state.token;
    const E = makeClient(AUTH);
    users[2].id = ok(await E.client.signUp.email(users[2]), "eve signUp").user.id;
    // A sign-in must keep the scrypt hash (no rehash to argon2id in scrypt mode).
    ok(await makeClient(AUTH).client.signIn.email({ email: users[2].email, password: users[2].password }));
    for (const u of users) {
      const h = await passwordHash(u.id);
      assert.match(h, SCRYPT_RE, `${u.name}: Better-Auth scrypt format, got ${h.slice(0, 20)}…`);
    }
    state.users = users;
  }, { fatal: true });

  await step("latchkey signs a JWT; its key row is in Better-Auth's format", async () => {
    const C = makeClient(AUTH);
    C.jar.cookies.set("better-auth.session_token", state.carolCookie.split("=").slice(1).join("="));
    const { token } = ok(await C.client.token());
    state.jwt = token;
    state.kid = jwtHeader(token).kid;
    assert.equal(jwtHeader(token).alg, ALG);
    const rows = await sql(`SELECT id, alg, crv, "publicKey", "privateKey", "expiresAt" FROM "jwks"`);
    const row = rows.find((r) => r.id === state.kid);
    assert.ok(row, `jwks row for ${state.kid}`);
    assert.equal(row.alg, ALG);
    assert.match(row.privateKey, /^"[0-9a-f]+"$/, "JSON-quoted hex of nonce‖ct‖tag");
    assert.doesNotThrow(() => JSON.parse(row.publicKey));
    state.jwksEntry = ok(await C.client.jwks()).keys.find((k) => k.kid === state.kid);
    await verifyJwt(token, `${AUTH}/api/auth/jwks`, new URL(AUTH).origin, { algorithms: [ALG] });
  }, { fatal: true });

  fs.writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
  done("to-ba.mjs fill");
}

if (phase === "check") {
  const secret = env("BETTER_AUTH_SECRET");
  const baseURL = env("BETTER_AUTH_URL").replace(/\/$/, "");
  const API = (process.env.API_URL || "").replace(/\/$/, "");
  const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8"));
  assert.equal(state.baseURL, baseURL, "Better-Auth takes over latchkey's URL");
  const ISS = new URL(baseURL).origin;
  const JWKS = `${baseURL}/api/auth/jwks`;
  const [carol, dave, eve] = state.users;
  let ba;

  await step("Better-Auth's migrator finds latchkey's schema complete", async () => {
    const plan = await migrateBA({ databaseUrl: DB, secret, baseURL, alg: ALG, run: false });
    const pending = { ...plan };
    delete pending.sql;
    assert.deepEqual(pending, { toBeCreated: [], toBeAdded: [], toBeAddedIndexes: [], unsafeChanges: [], schemaProblems: [] },
      `Better-Auth would migrate latchkey's schema:\n${plan.sql}`);
  });

  await step("a real Better-Auth server starts on latchkey's database", async () => {
    ba = await startBA({ databaseUrl: DB, secret, baseURL, alg: ALG });
  }, { fatal: true });

  await step("latchkey's session cookie is valid on Better-Auth's get-session", async () => {
    const r = await http("GET", `${baseURL}/api/auth/get-session`, { headers: { cookie: state.carolCookie } });
    assert.equal(r.status, 200);
    assert.equal(r.body?.user?.id, carol.id, `session: ${r.text}`);
    assert.equal(r.body.session.token, state.carolToken);
    const jwt = r.headers.get("set-auth-jwt");
    assert.ok(jwt, "set-auth-jwt");
    assert.equal(jwtHeader(jwt).kid, state.kid, "Better-Auth signs with latchkey's key");
    await verifyJwt(jwt, JWKS, ISS, { algorithms: [ALG] });
  });

  await step("latchkey's bearer token works on Better-Auth", async () => {
    const D = makeClient(baseURL, { bearer: true, sendOrigin: false });
    D.state.token = state.daveBearer;
    const s = ok(await D.client.getSession());
    assert.equal(s?.user?.id, dave.id);
  });

  await step("users made by latchkey sign in on Better-Auth (scrypt written by latchkey)", async () => {
    for (const u of state.users) {
      const X = makeClient(baseURL);
      const d = ok(await X.client.signIn.email({ email: u.email, password: u.password }), `${u.name} signIn on BA`);
      assert.equal(d.user.id, u.id);
      fails(await X.client.signIn.email({ email: u.email, password: u.password + "!" }), 401, "INVALID_EMAIL_OR_PASSWORD");
    }
    ok(await makeClient(baseURL).client.signIn.email({ email: eve.email, password: eve.password.replace("ﬁ", "fi") }), "NFKC");
  });

  await step("Better-Auth's /token and JWKS use latchkey's key; latchkey's JWT verifies against BA's JWKS", async () => {
    const C = makeClient(baseURL);
    ok(await C.client.signIn.email({ email: carol.email, password: carol.password }));
    const { token } = ok(await C.client.token());
    assert.equal(jwtHeader(token).kid, state.kid, "same kid");
    const jwks = ok(await C.client.jwks());
    const entry = jwks.keys.find((k) => k.kid === state.kid);
    assert.deepEqual(entry, state.jwksEntry, "Better-Auth publishes exactly the JWKS entry latchkey did");
    const rows = await sql(`SELECT count(*)::int AS n FROM "jwks"`);
    assert.equal(rows[0].n, 1, "Better-Auth did not need to mint a key");
    await verifyJwt(token, JWKS, ISS, { algorithms: [ALG] });
    await verifyJwt(state.jwt, JWKS, ISS, { algorithms: [ALG] });
    if (API) {
      for (const t of [token, state.jwt]) {
        const r = await http("GET", `${API}/api/me`, { headers: { authorization: `Bearer ${t}` } });
        assert.equal(r.status, 200, `latchkey-api in front of Better-Auth: ${r.text}`);
      }
    }
  });

  await step("Better-Auth keeps working normally on the database (sign-up, update, sign-out)", async () => {
    const N = makeClient(baseURL);
    const u = { name: "New", email: randomEmail("new"), password: "new password 1" };
    ok(await N.client.signUp.email(u));
    ok(await N.client.updateUser({ name: "Newer" }));
    assert.equal(ok(await N.client.getSession()).user.name, "Newer");
    assert.ok(ok(await N.client.listSessions()).length >= 1);
    ok(await N.client.signOut());
  });

  if (ba) await ba.close();
  done("to-ba.mjs check");
}

console.error(`usage: node to-ba.mjs fill|check`);
process.exit(2);
