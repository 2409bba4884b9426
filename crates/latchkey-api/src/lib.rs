//! `latchkey-api`: a resource server for Better-Auth JWTs. It verifies bearer tokens against
//! the auth daemon's JWKS and serves `/api/me`, a forward-auth endpoint for reverse proxies,
//! and optionally proxies every other request to an upstream with identity headers.
//!
//! # Settings (environment, or the TOML file in lower case with or without `latchkey_`)
//! | setting | default | |
//! |---|---|---|
//! | `LATCHKEY_LISTEN` | `127.0.0.1:8000` | |
//! | `BETTER_AUTH_URL` | — | required unless `LATCHKEY_JWKS_URL` and `LATCHKEY_JWT_ISSUER` are both set |
//! | `LATCHKEY_JWKS_URL` | `<origin>/api/auth/jwks` | http or https |
//! | `LATCHKEY_JWT_ISSUER` | origin of `BETTER_AUTH_URL` | exact match |
//! | `LATCHKEY_JWT_AUDIENCE` | origin of `BETTER_AUTH_URL`, else the issuer | |
//! | `LATCHKEY_JWKS_REFRESH` | `300` (s) | a successful fetch replaces the key set: a key gone from the JWKS is refused from then on |
//! | `LATCHKEY_JWT_MAX_LIFETIME` | `86400` (s) | longest `exp − iat` accepted (1 s to 1 year); a token without `iat` is refused |
//! | `LATCHKEY_JWT_CACHE_SIZE` | `10000` | entries of the verified-token cache (at most 1000000; about 3 KB each at Better-Auth's token size); `0` turns it off |
//! | `LATCHKEY_JWKS_CA_FILE` | — | extra PEM roots for an https JWKS |
//! | `LATCHKEY_REVOCATION` | `off` | `session` needs `DATABASE_URL` (secret) |
//! | `LATCHKEY_REVOCATION_CACHE_TTL` | `5` (s) | 0 disables the cache |
//! | `LATCHKEY_UPSTREAM` | — | `http(s)://host[:port][/prefix]`: proxy mode |
//! | `LATCHKEY_UPSTREAM_TIMEOUT` | `30` (s) | until the upstream's response headers |
//! | `LATCHKEY_MAX_BODY_BYTES` | `65536` | cap on proxied request bodies, 0 = none |
//! | `LATCHKEY_TLS_CERT` / `LATCHKEY_TLS_KEY` | — | HTTPS listener |
//! | `LATCHKEY_CORS` | `on` | CORS for browser apps on other origins (`on`/`off`) |
//! | `LATCHKEY_CORS_ORIGINS` | `BETTER_AUTH_TRUSTED_ORIGINS` | comma list, `*` wildcards (`https://*.example.com`); none = CORS off |
//! | `LATCHKEY_CORS_ALLOW_HEADERS` | — | comma list of request headers allowed besides `authorization, content-type` |
//! | `LATCHKEY_UPSTREAM_CORS` | `answer` | proxy mode: `answer` CORS here, or `pass` preflights and CORS headers to and from the upstream |
//! | `LATCHKEY_REQUIRE_VERIFIED_EMAIL` | `false` | refuse a valid token whose `emailVerified` claim is not `true` with `403 EMAIL_NOT_VERIFIED` (`/api/me`, `/auth/verify`, proxy) |
//! | `BETTER_AUTH_SECRET` | — | unused, but refused if shorter than 32 characters |
//!
//! # Choices
//! * Proxy mode forwards `/api/me` like any other path (the upstream owns the URL space);
//!   only `/healthz`, `/readyz` and `/auth/verify` stay local.
//! * The local routes never read a request body, so `LATCHKEY_MAX_BODY_BYTES` only limits
//!   proxied bodies: by `Content-Length` up front, and while streaming for chunked ones
//!   (both 413). Streaming is kept: nothing is buffered either way. A client body that
//!   breaks off or is malformed (bad chunked framing, fewer bytes than its `Content-Length`
//!   before a close) is the client's error: `400 INVALID_BODY`, logged at debug; only a
//!   failure of the upstream connection is a `502` and a WARN.
//! * WebSocket/`Upgrade` is not proxied (hop-by-hop headers are stripped).
//! * Proxied request targets are forwarded exactly as sent (never re-encoded or normalised),
//!   so what could reach the upstream is refused instead, `400 INVALID_PATH`: any dot
//!   segment (`.`, `..`, `...`, in any percent-encoding or case, double-encoded, with `;`
//!   parameters as in `..;/`, followed by an encoded `?` or `#` as in `..%23`, with trailing
//!   spaces, as overlong UTF-8 or fullwidth dots), any
//!   backslash, any encoded slash or backslash (`%2F`, `%5C`, `%252F`: also inside a segment,
//!   `/files/a%2Fb`, since an upstream that decodes before routing sees two segments), control
//!   characters (`%00`), and targets that are not a path (`*`, so `OPTIONS *` is not proxied;
//!   authority-form). `CONNECT` and `TRACE`/`TRACK` are `405`. Other encodings pass untouched
//!   (`%20`, `%C3%A9`, `%25`), as do dots inside names (`a..b`, `.well-known`) and anything in
//!   the query string.
//! * With revocation on, a revoked session keeps working for up to the cache TTL.
//! * The verified-token cache (`LATCHKEY_JWT_CACHE_SIZE`, latchkey-jwt's
//!   `VerifierConfig::cache_size`) keeps the claims of a token that passed full verification
//!   under the SHA-256 of the token, so a repeat token skips the signature check. A hit is
//!   served only while the key it was verified with is still in the key set (same `kid`, same
//!   JWK) and `exp` + leeway (10 s), `nbf` and `iat` still pass, checked at that moment as a
//!   fresh verification checks them: a cached token is refused at the same instant as an
//!   uncached one, after its expiry or once a refresh dropped its key. Refreshes also drop the
//!   entries of vanished keys. It covers the signature and claims only: the revocation check,
//!   the `sub` header check and `LATCHKEY_REQUIRE_VERIFIED_EMAIL` run on every request.
//! * Identity headers (forward-auth answers and proxied requests): `X-Auth-User-Id`,
//!   `X-Auth-User-Email`, `X-Auth-User-Email-Verified` (`true` only when the token's
//!   `emailVerified` is the JSON boolean `true`; `false` when absent or of another type),
//!   `X-Auth-Session-Id`, and on proxied requests `X-Auth-User-Name`. A client's own
//!   `X-Auth-*` headers (also spelt with `_`) never reach the upstream.
//! * `LATCHKEY_REQUIRE_VERIFIED_EMAIL=true` is checked after the token and, with revocation
//!   on, its session: a revoked session stays a `401`, only a good token of an unverified
//!   user is a `403` (no `WWW-Authenticate`: the token is valid, signing in again would not
//!   help until the address is verified).
//! * CORS covers `/api/me`, `/auth/verify` and, in proxy mode, every proxied path. Preflights
//!   (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) are answered before
//!   authentication (204; the grant only for an allowed origin); any other `OPTIONS` needs a
//!   token like every request. Every response, errors included, leaves through one exit
//!   (`App::handle`) that adds the grant for an allowed `Origin` (`Allow-Origin` echoed,
//!   `Allow-Credentials`, `Expose-Headers: www-authenticate, retry-after, x-request-id`,
//!   `Vary: Origin`), removes any `Access-Control-*` header for another origin, and sets
//!   `X-Request-Id`. Allowed methods: `GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS` in proxy
//!   mode, `GET, HEAD, OPTIONS` otherwise.
//! * `LATCHKEY_UPSTREAM_CORS=answer` (with CORS on): the upstream never sees a preflight, and
//!   its own `Access-Control-*` headers are replaced by latchkey's; with CORS off, proxying is
//!   as it was without CORS (a preflight needs a token and is forwarded). `pass`: preflights for proxied
//!   paths go to the upstream unauthenticated, without identity headers, `Authorization` or
//!   `Cookie` (client `X-Auth-*` headers are stripped as always), and proxied responses keep
//!   the upstream's CORS headers untouched (adding ours would double them); this holds
//!   whatever `LATCHKEY_CORS` says, which then only governs latchkey's own answers
//!   (`/auth/verify`, and its errors such as a 401 on a proxied path).

// Lint policy (workspace `[lints]`, clippy.toml): no unwrap, expect or panic outside tests,
// since a daemon must answer an error rather than abort; and `unreachable_pub` warns, so `pub`
// means "used by main.rs" (the binary builds on this library) and everything else is
// `pub(crate)`. The real API is `App` (build it, serve requests with `App::handle`) and the
// `config` module it is built from.

mod app;
pub mod config;
mod error;
mod proxy;
mod revocation;
mod telemetry;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use app::App;
pub use config::Config;
