// A real OpenID Provider on loopback for latchkey's social sign-in tests: panva's certified
// `oidc-provider` (9.x), configured like Google's: authorization code flow with PKCE (S256)
// required, RS256 ID tokens that carry the profile and email claims themselves, refresh tokens
// always issued, `iss` in the authorization response. Nobody types anything: the
// authorization request's `login_hint` names the user (a key of the users file), login and
// consent complete at once, and an unknown user ends in `error=access_denied` at the client.
//
// Usage: node op.mjs CONFIG.json, written by tests/src/oauth_peers.rs:
//   { "ready_file", "users_file", "requests_file", "access_token_ttl", "id_token_ttl",
//     "clients": [{ "client_id", "client_secret", "redirect_uris", "token_endpoint_auth_method" }] }
// It listens on an ephemeral 127.0.0.1 port, then writes { port } to ready_file; the issuer
// is http://127.0.0.1:PORT.
//
// Users file (re-read on every lookup): { "<login_hint>": { "sub"?, "email"?, ...claims } }.
// The account id (and `sub`) is the user's "sub", else the key; the `email` claim is the key
// unless the user has an "email" of its own (a string replaces it, null removes it).

import crypto from 'node:crypto';
import http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

import { announce, readBody, readConfig, readUsers, recorder } from './common.mjs';

const config = readConfig();
const record = recorder(config.requests_file);

/** [key, user] of the users file for a login_hint (exact, else case-insensitive). */
function userByHint(hint) {
  const users = readUsers(config.users_file);
  if (Object.hasOwn(users, hint)) return [hint, users[hint]];
  const lower = hint.toLowerCase();
  const key = Object.keys(users).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : [key, users[key]];
}

const accountIdOf = (key, user) => String(user.sub ?? key);

/** [key, user] of the user whose account id is `id`. */
function userByAccountId(id) {
  const users = readUsers(config.users_file);
  return Object.entries(users).find(([key, user]) => accountIdOf(key, user) === id);
}

function claimsOf(key, user) {
  const claims = { ...user };
  delete claims.sub;
  if (!Object.hasOwn(claims, 'email')) claims.email = key;
  for (const [k, v] of Object.entries(claims)) {
    if (v === null) delete claims[k];
  }
  return claims;
}

// The standard claims of each scope; a user's other keys are never released.
const PROFILE = [
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username',
  'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
];

// Login: the stock checks, plus one that asks for a new login when the login_hint names
// somebody other than the user of the OP's session (a browser that signed in as A and now
// starts a sign-in for B).
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'login_hint_mismatch',
  'login_hint names another user than the one signed in',
  (ctx) => {
    const hint = ctx.oidc.params.login_hint;
    const current = ctx.oidc.session.accountId;
    if (!hint || !current) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    const found = userByHint(hint);
    if (found && accountIdOf(...found) === current) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return interactionPolicy.Check.REQUEST_PROMPT;
  },
));
// Google's prompt=select_account: resolved like a login (by login_hint).
policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }));

const jwk = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  .export({ format: 'jwk' });

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_post',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    })),
    jwks: { keys: [{ ...jwk, kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: PROFILE,
    },
    // Google puts the scope's claims in the ID token itself, not only at userinfo.
    conformIdTokenClaims: false,
    // Tokens expire when they say (the default tolerance is 15 s).
    clockTolerance: 0,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Refresh tokens for every client allowed the grant, offline_access or not, and not tied
    // to the OP's browser session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: config.access_token_ttl || 3600,
      AuthorizationCode: 60,
      IdToken: config.id_token_ttl || 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Consent is implicit: every requested scope and claim is granted.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const { accountId } = oidc.session;
      const clientId = oidc.client.clientId;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
        grant = new oidc.provider.Grant({ accountId, clientId });
      }
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      grant.addOIDCClaims([...oidc.requestParamClaims]);
      await grant.save();
      return grant;
    },
    async findAccount(_ctx, id) {
      const found = userByAccountId(id);
      if (!found) return undefined;
      return {
        accountId: id,
        // Re-read at every use: a test may change the user while the OP runs.
        async claims() {
          const now = userByAccountId(id);
          return now ? claimsOf(...now) : {};
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // Finishes an interaction at once: the login_hint's user signs in and consents, or the
  // authorization ends with access_denied.
  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const hint = details.params.login_hint;
    let result;
    if (!hint && details.session?.accountId) {
      result = { login: { accountId: details.session.accountId } };
    } else if (!hint) {
      result = { error: 'access_denied', error_description: 'no login_hint: the test OP does not know who signs in' };
    } else {
      const found = userByHint(hint);
      if (!found) {
        result = { error: 'access_denied', error_description: `no such user: ${hint}` };
      } else {
        const accountId = accountIdOf(...found);
        if (details.session?.accountId && details.session.accountId !== accountId) {
          // Another user was signed in: end that session (the provider's own answer would be a
          // logout confirmation page), and detach the interaction from it.
          const old = await provider.Session.findByUid(details.session.uid);
          if (old) await old.destroy();
          delete details.session.uid;
          await details.save(details.exp - Math.floor(Date.now() / 1000));
        }
        result = { login: { accountId } };
      }
    }
    if (!result.error) {
      result.consent = {};
      result.select_account = {};
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const registered = new Map(config.clients.map((c) => [c.client_id, c.token_endpoint_auth_method || 'client_secret_post']));

  // oidc-provider takes client_secret_basic and client_secret_post from any client; this OP
  // holds each client to its registered method, so a test sees which one the client used.
  function authMethodMismatch(req, body) {
    if (req.method !== 'POST' || !['/token', '/token/revocation', '/token/introspection'].includes(req.url.split('?')[0])) {
      return undefined;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const auth = req.headers.authorization || '';
    let clientId = form.get('client_id');
    let used;
    if (/^basic /i.test(auth)) {
      used = 'client_secret_basic';
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
      try {
        clientId = decodeURIComponent(decoded.split(':')[0].replace(/\+/g, ' '));
      } catch {
        return undefined;
      }
    } else if (form.has('client_secret')) {
      used = 'client_secret_post';
    }
    const want = registered.get(clientId);
    if (!used || !want || used === want) return undefined;
    return `client ${clientId} is registered with ${want} but authenticated with ${used}`;
  }

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    // The body is read here (to record it) and handed to the provider as req.body.
    let body = Buffer.alloc(0);
    if (req.method === 'POST' || req.method === 'PUT') {
      try {
        body = await readBody(req, 56 * 1024);
      } catch (err) {
        res.statusCode = 400;
        res.end(String(err));
        return;
      }
      req.body = body;
    }
    record({ method: req.method, path: req.url, headers: { ...req.headers }, body: body.toString('utf8') });
    const mismatch = authMethodMismatch(req, body);
    if (mismatch) {
      console.error(`client authentication refused: ${mismatch}`);
      res.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }));
      return;
    }
    if (req.method === 'GET' && /^\/interaction\/[^/?]+$/.test(req.url.split('?')[0])) {
      interaction(req, res).catch((err) => {
        console.error('interaction failed:', err);
        if (!res.headersSent) {
          res.statusCode = 400;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ error: err.name, error_description: err.message }));
        }
      });
      return;
    }
    callback(req, res);
  });

  for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => {
      const detail = [err?.error_description, err?.error_detail, err?.cause?.message].filter(Boolean).join('; ');
      console.error(`${event}: ${err?.name}: ${err?.message}${detail ? ` (${detail})` : ''}`);
    });
  }
  announce(config.ready_file, port);
  console.log(`oidc-provider listening, issuer ${issuer}`);
});
