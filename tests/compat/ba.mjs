// A real Better-Auth 1.7 server in the reference configuration of a sidecar deployment
// (pg Pool, emailAndPassword, jwt() + bearer()),
// served in-process with node:http + toNodeHandler.
//
// As a module: `startBA({...})` / `migrateBA({...})`. As a program (`node ba.mjs`), it serves
// until SIGTERM, configured by env:
//   DATABASE_URL, BETTER_AUTH_SECRET, BETTER_AUTH_URL (http://127.0.0.1:PORT; the port is
//   taken from it), BETTER_AUTH_TRUSTED_ORIGINS (read by Better-Auth itself), JWT_ALG,
//   BA_MIGRATE=1 to run Better-Auth's own migrator first; BA_POOL_MAX (pg Pool size, 5);
//   OIDC_ISSUER, OIDC_CLIENT_ID,
//   OIDC_CLIENT_SECRET add the OpenID provider `corp` (genericOAuth by discovery,
//   client_secret_basic) with provider tokens encrypted at rest (encryptOAuthTokens).

import http from "node:http";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { bearer, genericOAuth, jwt } from "better-auth/plugins";
import pg from "pg";

/** What the send callbacks were handed, newest last: `{kind, email, url, token}`. */
export const sentMail = [];

export function baOptions({ databaseUrl, secret, baseURL, alg = "EdDSA", pool }) {
  const jwtOptions = alg && alg !== "EdDSA" ? { jwks: { keyPairConfig: { alg } } } : undefined;
  return {
    database: pool ?? new pg.Pool({ connectionString: databaseUrl, max: Number(process.env.BA_POOL_MAX ?? 5) }),
    secret,
    baseURL,
    emailAndPassword: {
      enabled: true,
      sendResetPassword: async ({ user, url, token }) => { sentMail.push({ kind: "reset", email: user.email, url, token }); },
    },
    emailVerification: {
      sendVerificationEmail: async ({ user, url, token }) => { sentMail.push({ kind: "verify", email: user.email, url, token }); },
    },
    user: {
      changeEmail: {
        enabled: true,
        sendChangeEmailConfirmation: async ({ user, newEmail, url, token }) => { sentMail.push({ kind: "change-email", email: user.email, newEmail, url, token }); },
      },
      deleteUser: {
        enabled: true,
        sendDeleteAccountVerification: async ({ user, url, token }) => { sentMail.push({ kind: "delete-account", email: user.email, url, token }); },
      },
    },
    plugins: [jwt(jwtOptions), bearer(), ...oidcPlugins()],
    ...(process.env.OIDC_ISSUER ? { account: { encryptOAuthTokens: true } } : {}),
    telemetry: { enabled: false },
  };
}

/** The provider `corp` of the social sign-in checks, when the environment names one. */
function oidcPlugins() {
  const issuer = process.env.OIDC_ISSUER;
  if (!issuer) return [];
  return [
    genericOAuth({
      config: [
        {
          providerId: "corp",
          discoveryUrl: `${issuer}/.well-known/openid-configuration`,
          clientId: process.env.OIDC_CLIENT_ID,
          clientSecret: process.env.OIDC_CLIENT_SECRET,
          scopes: ["openid", "email", "profile", "offline_access"],
          pkce: true,
          authentication: "basic",
        },
      ],
    }),
  ];
}

/** Better-Auth's own migrator on `databaseUrl`. Returns what it found to do (before doing it). */
export async function migrateBA({ databaseUrl, secret, baseURL, alg, run = true }) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    const options = baOptions({ databaseUrl, secret, baseURL, alg, pool });
    const m = await getMigrations(options);
    const plan = {
      toBeCreated: m.toBeCreated.map((t) => t.table),
      toBeAdded: m.toBeAdded.map((t) => ({ table: t.table, fields: Object.keys(t.fields) })),
      toBeAddedIndexes: (m.toBeAddedIndexes ?? []).map((i) => i.name),
      unsafeChanges: m.unsafeChanges ?? [],
      schemaProblems: m.schemaProblems ?? [],
      sql: await m.compileMigrations(),
    };
    if (run) await m.runMigrations();
    return plan;
  } finally {
    await pool.end();
  }
}

/**
 * Serves Better-Auth on 127.0.0.1:`listenPort` (default: the port of `baseURL`; another port
 * stands for a second instance behind the same public URL). Returns `{auth, url, close()}`.
 */
export async function startBA({ databaseUrl, secret, baseURL, alg, listenPort }) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: Number(process.env.BA_POOL_MAX ?? 5) });
  const auth = betterAuth(baOptions({ databaseUrl, secret, baseURL, alg, pool }));
  const url = new URL(baseURL);
  const server = http.createServer(toNodeHandler(auth));
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listenPort ?? url.port), "127.0.0.1", resolve);
  });
  return {
    auth,
    url: `http://127.0.0.1:${listenPort ?? url.port}`,
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      await pool.end();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const databaseUrl = process.env.DATABASE_URL;
  const secret = process.env.BETTER_AUTH_SECRET;
  const baseURL = process.env.BETTER_AUTH_URL;
  const alg = process.env.JWT_ALG || "EdDSA";
  if (!databaseUrl || !secret || !baseURL) {
    console.error("ba.mjs needs DATABASE_URL, BETTER_AUTH_SECRET and BETTER_AUTH_URL");
    process.exit(2);
  }
  if (process.env.BA_MIGRATE === "1") {
    const plan = await migrateBA({ databaseUrl, secret, baseURL, alg });
    console.log(`better-auth migrator: created ${JSON.stringify(plan.toBeCreated)}`);
  }
  const ba = await startBA({ databaseUrl, secret, baseURL, alg });
  console.log(`better-auth ${ba.url} ready`);
  const stop = async () => {
    await ba.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
