// A GitHub stand-in on loopback for latchkey's social sign-in tests: GitHub's OAuth web flow
// (github.com/login/oauth/*) and the two REST calls a sign-in makes (api.github.com/user and
// /user/emails), answering as GitHub does, errors included (the token endpoint's errors come
// with HTTP 200). Nobody types anything: `login_hint` (or GitHub's own `login`) names the
// user, who authorizes at once; an unknown user ends in `error=access_denied` at the client.
// Every request is appended to requests_file (method, path, headers, body).
//
// Usage: node github.mjs CONFIG.json, written by tests/src/oauth_peers.rs:
//   { "ready_file", "users_file", "requests_file", "client_id", "client_secret",
//     "expiring_tokens", "access_token_ttl", "refresh_token_ttl" }
// Users file (re-read on every request): { "<login_hint>": { "id", "login", "name", "email",
// "avatar_url", ..., "emails": [{ "email", "primary", "verified", "visibility" }] } }.

import crypto from 'node:crypto';
import http from 'node:http';

import { announce, readBody, readConfig, readUsers, recorder } from './common.mjs';

const config = readConfig();
const record = recorder(config.requests_file);
const expiring = config.expiring_tokens !== false;
const accessTtl = config.access_token_ttl ?? 28800;
const refreshTtl = config.refresh_token_ttl ?? 15897600;

const DOCS = 'https://docs.github.com/apps/managing-oauth-apps';
const ERRORS = {
  incorrect_client_credentials: ['The client_id and/or client_secret passed are incorrect.', `${DOCS}/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials`],
  redirect_uri_mismatch: ['The redirect_uri MUST match the registered callback URL for this application.', `${DOCS}/troubleshooting-oauth-app-access-token-request-errors/#redirect-uri-mismatch2`],
  bad_verification_code: ['The code passed is incorrect or expired.', `${DOCS}/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code`],
  bad_refresh_token: ['The refresh token passed is incorrect or expired.', 'https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens'],
  unsupported_grant_type: ['The grant type is not supported.', 'https://docs.github.com'],
};

const now = () => Math.floor(Date.now() / 1000);
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const token = (prefix, len) => prefix + Array.from(crypto.randomBytes(len), (b) => BASE62[b % 62]).join('');

/** code -> { clientId, redirectUri, challenge, method, userKey, scope, exp, used } */
const codes = new Map();
/** access token -> { userKey, scope, exp } */
const accessTokens = new Map();
/** refresh token -> { userKey, scope, exp, used } */
const refreshTokens = new Map();

function findUser(hint) {
  const users = readUsers(config.users_file);
  if (Object.hasOwn(users, hint)) return [hint, users[hint]];
  const lower = hint.toLowerCase();
  const hit = Object.entries(users).find(([k, u]) => k.toLowerCase() === lower
    || (typeof u.login === 'string' && u.login.toLowerCase() === lower));
  return hit;
}

/** GitHub takes space- or comma-separated scopes and grants them comma-separated. */
const normalizeScope = (scope) => [...new Set((scope || '').split(/[\s,]+/).filter(Boolean))].join(',');

function send(res, status, type, body, headers = {}) {
  const bytes = Buffer.from(body);
  res.writeHead(status, { 'content-type': type, 'content-length': bytes.length, ...headers });
  res.end(bytes);
}
const json = (res, status, value, headers) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), headers);

function redirect(res, target, params) {
  const url = new URL(target);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) url.searchParams.append(k, v);
  }
  res.writeHead(302, { location: url.toString(), 'content-length': 0 });
  res.end();
}

function authorize(req, res, query) {
  const clientId = query.get('client_id');
  const redirectUri = query.get('redirect_uri');
  const state = query.get('state') ?? undefined;
  if (clientId !== config.client_id) {
    send(res, 404, 'text/html; charset=utf-8', '<!DOCTYPE html><title>Page not found</title><h1>404</h1><p>unknown client_id</p>');
    return;
  }
  let target;
  try {
    target = new URL(redirectUri).toString();
  } catch {
    send(res, 400, 'text/html; charset=utf-8', '<!DOCTYPE html><h1>redirect_uri missing or not absolute</h1>');
    return;
  }
  const hint = query.get('login_hint') || query.get('login');
  const found = hint ? findUser(hint) : undefined;
  if (!found) {
    console.error(`authorize: ${hint ? `no such user: ${hint}` : 'no login_hint'}: access_denied`);
    redirect(res, target, {
      error: 'access_denied',
      error_description: 'The user has denied your application access.',
      error_uri: `${DOCS}/troubleshooting-authorization-request-errors/#access-denied`,
      state,
    });
    return;
  }
  const challenge = query.get('code_challenge') || undefined;
  const method = query.get('code_challenge_method') || (challenge ? 'plain' : undefined);
  if (challenge && method !== 'S256') {
    redirect(res, target, {
      error: 'invalid_request',
      error_description: 'code_challenge_method must be S256.',
      state,
    });
    return;
  }
  const code = crypto.randomBytes(10).toString('hex');
  codes.set(code, {
    clientId,
    redirectUri: redirectUri,
    challenge,
    userKey: found[0],
    scope: normalizeScope(query.get('scope')),
    exp: now() + 600,
    used: false,
  });
  redirect(res, target, { code, state });
}

function tokenAnswer(req, res, value) {
  const accept = (req.headers.accept || '').toLowerCase();
  if (accept.includes('application/json')) {
    json(res, 200, value);
  } else {
    // GitHub's default answer is form-encoded.
    const body = new URLSearchParams(Object.entries(value).map(([k, v]) => [k, String(v)])).toString();
    send(res, 200, 'application/x-www-form-urlencoded; charset=utf-8', body);
  }
}

function tokenError(req, res, error, reason) {
  console.error(`access_token: ${error}: ${reason}`);
  const [description, uri] = ERRORS[error];
  tokenAnswer(req, res, { error, error_description: description, error_uri: uri });
}

function issue(req, res, userKey, scope) {
  const accessToken = token('gho_', 36);
  accessTokens.set(accessToken, { userKey, scope, exp: expiring ? now() + accessTtl : Infinity });
  if (!expiring) {
    tokenAnswer(req, res, { access_token: accessToken, token_type: 'bearer', scope });
    return;
  }
  const refreshToken = token('ghr_', 76);
  refreshTokens.set(refreshToken, { userKey, scope, exp: now() + refreshTtl, used: false });
  tokenAnswer(req, res, {
    access_token: accessToken,
    expires_in: accessTtl,
    refresh_token: refreshToken,
    refresh_token_expires_in: refreshTtl,
    token_type: 'bearer',
    scope,
  });
}

function accessToken(req, res, query, bodyText) {
  const type = (req.headers['content-type'] || '').toLowerCase();
  const params = new URLSearchParams(query);
  if (type.startsWith('application/json')) {
    try {
      for (const [k, v] of Object.entries(JSON.parse(bodyText || '{}'))) params.set(k, String(v));
    } catch {
      json(res, 400, { message: 'Problems parsing JSON' });
      return;
    }
  } else {
    for (const [k, v] of new URLSearchParams(bodyText)) params.set(k, v);
  }
  let clientId = params.get('client_id');
  let clientSecret = params.get('client_secret');
  const auth = req.headers.authorization || '';
  if (/^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    // RFC 6749 section 2.3.1: both form-urlencoded inside the base64.
    const formDecode = (v) => {
      try {
        return decodeURIComponent(v.replace(/\+/g, ' '));
      } catch {
        return v;
      }
    };
    if (i >= 0) {
      clientId = formDecode(decoded.slice(0, i));
      clientSecret = formDecode(decoded.slice(i + 1));
    }
  }
  if (clientId !== config.client_id || clientSecret !== config.client_secret) {
    tokenError(req, res, 'incorrect_client_credentials', `client_id ${clientId}`);
    return;
  }
  const grantType = params.get('grant_type') || 'authorization_code';
  if (grantType === 'authorization_code') {
    const code = params.get('code') || '';
    const entry = codes.get(code);
    if (!entry || entry.used || entry.exp < now() || entry.clientId !== clientId) {
      tokenError(req, res, 'bad_verification_code', entry ? (entry.used ? 'code already used' : 'code expired') : 'unknown code');
      return;
    }
    // Single use: the first presentation spends it, whatever follows.
    entry.used = true;
    const redirectUri = params.get('redirect_uri');
    if (redirectUri && redirectUri !== entry.redirectUri) {
      tokenError(req, res, 'redirect_uri_mismatch', `${redirectUri} is not ${entry.redirectUri}`);
      return;
    }
    if (entry.challenge) {
      const verifier = params.get('code_verifier');
      if (!verifier) {
        tokenError(req, res, 'bad_verification_code', 'code_verifier missing');
        return;
      }
      const expected = crypto.createHash('sha256').update(verifier).digest('base64url');
      if (expected !== entry.challenge) {
        tokenError(req, res, 'bad_verification_code', 'code_verifier does not match code_challenge');
        return;
      }
    }
    issue(req, res, entry.userKey, entry.scope);
    return;
  }
  if (grantType === 'refresh_token') {
    const entry = refreshTokens.get(params.get('refresh_token') || '');
    if (!expiring || !entry || entry.used || entry.exp < now()) {
      tokenError(req, res, 'bad_refresh_token', entry ? 'refresh token used or expired' : 'unknown refresh token');
      return;
    }
    entry.used = true;
    issue(req, res, entry.userKey, entry.scope);
    return;
  }
  tokenError(req, res, 'unsupported_grant_type', grantType);
}

const API_DOCS = 'https://docs.github.com/rest';

function api(req, res, path) {
  if (!req.headers['user-agent']) {
    send(res, 403, 'text/plain; charset=utf-8', 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n');
    return;
  }
  const m = /^(?:bearer|token)\s+(\S+)$/i.exec(req.headers.authorization || '');
  const grant = m ? accessTokens.get(m[1]) : undefined;
  const user = grant && grant.exp >= now() ? readUsers(config.users_file)[grant.userKey] : undefined;
  if (!user) {
    json(res, 401, { message: 'Bad credentials', documentation_url: API_DOCS, status: '401' });
    return;
  }
  const headers = { 'x-oauth-scopes': grant.scope.split(',').filter(Boolean).join(', '), 'x-github-media-type': 'github.v3; format=json' };
  if (path === '/user') {
    const { emails: _emails, ...profile } = user;
    const login = profile.login ?? grant.userKey.split('@')[0];
    json(res, 200, {
      login,
      id: profile.id ?? 1,
      node_id: `U_${Buffer.from(String(profile.id ?? 1)).toString('base64url')}`,
      avatar_url: null,
      html_url: `https://github.com/${login}`,
      type: 'User',
      site_admin: false,
      name: null,
      email: null,
      ...profile,
    }, headers);
    return;
  }
  // /user/emails needs the user:email (or user) scope; without it GitHub answers 404.
  const scopes = grant.scope.split(',');
  if (!scopes.includes('user:email') && !scopes.includes('user')) {
    json(res, 404, { message: 'Not Found', documentation_url: `${API_DOCS}/users/emails#list-email-addresses-for-the-authenticated-user`, status: '404' }, headers);
    return;
  }
  const emails = user.emails ?? [{ email: grant.userKey, primary: true, verified: true, visibility: 'private' }];
  json(res, 200, emails, headers);
}

async function handle(req, res) {
  const body = await readBody(req);
  const bodyText = body.toString('utf8');
  record({ method: req.method, path: req.url, headers: { ...req.headers }, body: bodyText });
  const url = new URL(req.url, 'http://stand-in');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (req.method === 'GET' && path === '/login/oauth/authorize') {
    authorize(req, res, url.searchParams);
  } else if (req.method === 'POST' && path === '/login/oauth/access_token') {
    accessToken(req, res, url.searchParams, bodyText);
  } else if (req.method === 'GET' && (path === '/user' || path === '/user/emails')) {
    api(req, res, path);
  } else {
    json(res, 404, { message: 'Not Found', documentation_url: API_DOCS, status: '404' });
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('request failed:', err);
    if (!res.headersSent) json(res, 500, { message: String(err) });
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  announce(config.ready_file, port);
  console.log(`GitHub stand-in listening on http://127.0.0.1:${port}`);
});
