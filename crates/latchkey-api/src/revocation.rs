//! Optional check that a token's Better-Auth session still exists, so that sign-out and
//! revoke-session take effect before the JWT expires (after at most the cache TTL).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use latchkey_core::sql::{text, Db, Sql};

use crate::error::ApiError;

/// Bounds memory when many distinct (possibly bogus-but-signed) sids arrive.
const MAX_CACHE_ENTRIES: usize = 10_000;
const LIVE_SESSION_SQL: &str = r#"select 1 from "session" where id = $1 and "expiresAt" > now()"#;

pub(crate) struct SessionCheck {
    db: Db,
    metrics: crate::telemetry::ApiMetrics,
    ttl: Duration,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl SessionCheck {
    pub(crate) fn new(db: Db, ttl: Duration, metrics: crate::telemetry::ApiMetrics) -> Self {
        Self {
            db,
            metrics,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Does the database answer (for `/readyz`)?
    pub(crate) async fn ping(&self) -> bool {
        self.connect().await.is_ok()
    }

    /// Connects and reads the session table, or says why not.
    pub(crate) async fn connect(&self) -> Result<(), String> {
        let conn = self.db.conn().await.map_err(|e| e.to_string())?;
        conn.opt_row(r#"select 1 from "session" limit 1"#, &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub(crate) async fn check(&self, sid: Option<&str>) -> Result<(), ApiError> {
        let sid = sid.ok_or(ApiError::NoSessionId)?;
        let live = match self.cached(sid) {
            Some(live) => {
                self.metrics.revocation_check("cache_hit");
                live
            }
            None => {
                let live = match self.query(sid).await {
                    Ok(live) => live,
                    Err(e) => {
                        self.metrics.revocation_check("error");
                        return Err(e);
                    }
                };
                self.metrics
                    .revocation_check(if live { "live" } else { "revoked" });
                self.remember(sid, live);
                live
            }
        };
        if live {
            Ok(())
        } else {
            Err(ApiError::SessionRevoked)
        }
    }

    fn cached(&self, sid: &str) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(sid) {
            Some((live, at)) if at.elapsed() < self.ttl => Some(*live),
            _ => None,
        }
    }

    fn remember(&self, sid: &str, live: bool) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHE_ENTRIES && !cache.contains_key(sid) {
            let ttl = self.ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHE_ENTRIES {
                // Still full of fresh entries: drop an arbitrary one, cheaper than an LRU.
                if let Some(victim) = cache.keys().next().cloned() {
                    cache.remove(&victim);
                }
            }
        }
        cache.insert(sid.to_string(), (live, Instant::now()));
    }

    async fn query(&self, sid: &str) -> Result<bool, ApiError> {
        // An unnamed statement: works through transaction poolers (latchkey_core::sql).
        let conn = self.db.conn().await.map_err(|e| {
            tracing::warn!("revocation check: no database connection: {e}");
            ApiError::RevocationUnavailable
        })?;
        let row = conn
            .opt_row(LIVE_SESSION_SQL, &[text(&sid)])
            .await
            .map_err(|e| {
                tracing::warn!("revocation check: query failed: {e}");
                ApiError::RevocationUnavailable
            })?;
        Ok(row.is_some())
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn unreachable_pool() -> Db {
        // Port 1 on localhost refuses at once; the pool connects lazily.
        let url = SecretString::from("postgres://u:p@127.0.0.1:1/db".to_string());
        Db::new(
            latchkey_core::db::pool(&url, 2).unwrap(),
            Duration::from_secs(5),
        )
    }

    #[tokio::test]
    async fn fails_closed_and_requires_a_sid() {
        let check = SessionCheck::new(
            unreachable_pool(),
            Duration::from_secs(5),
            Default::default(),
        );
        assert_eq!(check.check(None).await, Err(ApiError::NoSessionId));
        assert_eq!(
            check.check(Some("s1")).await,
            Err(ApiError::RevocationUnavailable)
        );
        // Failures are not cached.
        assert_eq!(check.cache_len(), 0);
    }

    #[tokio::test]
    async fn cache_answers_and_stays_bounded() {
        let check = SessionCheck::new(
            unreachable_pool(),
            Duration::from_secs(5),
            Default::default(),
        );
        check.remember("live", true);
        check.remember("dead", false);
        assert_eq!(check.check(Some("live")).await, Ok(()));
        assert_eq!(
            check.check(Some("dead")).await,
            Err(ApiError::SessionRevoked)
        );
        for i in 0..MAX_CACHE_ENTRIES + 10 {
            check.remember(&format!("s{i}"), true);
        }
        assert_eq!(check.cache_len(), MAX_CACHE_ENTRIES);
    }
}
