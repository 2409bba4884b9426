// The code that runs in the browser page (bundled by bundle.mjs with esbuild). It uses the
// official Better-Auth client exactly as an app on its own origin would: cookies, not bearer
// tokens, with `credentials: "include"` on every cross-origin request.
//
// The page's configuration comes from `window.LATCHKEY_CONFIG` (written into index.html by the
// static server of run.mjs): { authUrl, apiUrl, proxyUrl, proxyPath }.
// Every action returns a plain JSON-serialisable object, never throws: playwright's
// page.evaluate() hands it to run.mjs, which prints it for the Rust test to check.

import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";

const config = window.LATCHKEY_CONFIG;

// The responses the client saw during the current action: which of latchkey's headers the
// page may read (only those in Access-Control-Expose-Headers, cross-origin).
let seen = [];

const authClient = createAuthClient({
  baseURL: config.authUrl,
  plugins: [jwtClient()],
  fetchOptions: {
    credentials: "include",
    onResponse: ({ response }) => {
      seen.push({
        path: new URL(response.url).pathname,
        status: response.status,
        setAuthToken: response.headers.get("set-auth-token") !== null,
        setAuthJwt: response.headers.get("set-auth-jwt") !== null,
      });
    },
  },
});

/** What a thrown value looks like: fetch() rejects with a TypeError on a CORS failure. */
function thrown(e) {
  return { name: e?.name ?? typeof e, message: String(e?.message ?? e) };
}

/** A Better-Auth client result ({ data, error }) or what was thrown instead, and the
 *  responses it was made of. */
async function call(f) {
  seen = [];
  try {
    const { data, error } = await f();
    return { data: data ?? null, error: error ?? null, responses: seen };
  } catch (e) {
    return { thrown: thrown(e), responses: seen };
  }
}

/** A plain fetch with `Authorization: Bearer <jwt>`: status, a few headers and the body. */
async function bearerFetch(url, jwt) {
  try {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${jwt}` } });
    const text = await r.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return {
      status: r.status,
      wwwAuthenticate: r.headers.get("www-authenticate"),
      body,
    };
  } catch (e) {
    return { thrown: thrown(e) };
  }
}

window.latchkey = {
  env: () => ({
    origin: window.location.origin,
    isSecureContext: window.isSecureContext,
    userAgent: navigator.userAgent,
  }),
  signUp: (name, email, password) =>
    call(() => authClient.signUp.email({ name, email, password })),
  signIn: (email, password) => call(() => authClient.signIn.email({ email, password })),
  getSession: () => call(() => authClient.getSession()),
  token: () => call(() => authClient.token()),
  me: (jwt) => bearerFetch(`${config.apiUrl}/api/me`, jwt),
  proxied: (jwt) => bearerFetch(`${config.proxyUrl}${config.proxyPath}`, jwt),
};
window.latchkeyReady = true;
