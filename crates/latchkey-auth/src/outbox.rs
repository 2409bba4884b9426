//! The durable mail outbox (`latchkey_outbox`): a request writes its message in the
//! transaction of its change and returns; a worker on every replica sends what is due.
//!
//! * **Claiming.** In a short transaction a worker takes the oldest due row `FOR UPDATE SKIP
//!   LOCKED`, counts the attempt and pushes `dueAt` out by [`LEASE`], then commits and sends.
//!   Other replicas skip the row while it is locked and do not see it as due afterwards, so
//!   each message goes out once; a replica that dies mid-send leaves the row to be retried
//!   when the lease ends (at least once, never lost).
//! * **Retries.** A failed attempt is due again after an exponential backoff
//!   ([`backoff`]); after [`MAX_ATTEMPTS`] the row is marked failed and an error logged.
//! * **Retention.** A sent row loses its bodies at once (they hold links that are
//!   credentials until they expire) and is deleted after [`SENT_RETENTION`]; failed rows
//!   after [`FAILED_RETENTION`]. Expired `verification` rows go in the same hourly purge.
//! * **Shutdown.** The worker checks the signal between messages, never during a send.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use latchkey_core::shutdown::ShutdownSignal;
use latchkey_core::sql::{int4, text, timestamptz, Db, Sql};
use tokio::sync::Notify;

use crate::ids::new_id;
use crate::mail::{Outgoing, Rendered, Transport};
use crate::store::StoreError;
use crate::telemetry::AuthMetrics;

/// Attempts before a message is given up (about 40 minutes of retrying; reset links are
/// valid for an hour by default).
pub(crate) const MAX_ATTEMPTS: i32 = 10;
/// How long a claimed row stays invisible to other replicas while it is being sent.
const LEASE: Duration = Duration::from_secs(300);
/// How often an idle worker looks for rows written by other replicas.
const POLL: Duration = Duration::from_secs(2);
const SENT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
const FAILED_RETENTION: Duration = Duration::from_secs(30 * 86_400);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The delay before attempt `attempts + 1`: 5 s, doubling, at most 30 minutes.
pub(crate) fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_secs(5u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(1800))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::seconds(d.as_secs() as i64)
}

/// Queues `msg` on `c` (the transaction of the change it belongs to). Returns the row id.
pub(crate) async fn enqueue(c: &impl Sql, msg: &Rendered) -> Result<String, StoreError> {
    let id = new_id();
    let now = Utc::now();
    c.exec(
        r#"insert into "latchkey_outbox" ("id", "kind", "recipient", "subject", "textBody", "htmlBody", "createdAt", "dueAt")
           values ($1, $2, $3, $4, $5, $6, $7, $7)"#,
        &[
            text(&id),
            text(&msg.kind.name()),
            text(&msg.recipient),
            text(&msg.subject),
            text(&msg.text),
            text(&msg.html),
            timestamptz(&now),
        ],
    )
    .await?;
    Ok(id)
}

/// Deletes the row `id` if it exists, in the same transaction; the decoy half of the
/// constant-work paths (an unknown address queues a message and drops it, a known one drops a
/// row that does not exist), so that both issue the same statements.
pub(crate) async fn discard(c: &impl Sql, id: &str) -> Result<u64, StoreError> {
    Ok(c.exec(
        r#"delete from "latchkey_outbox" where "id" = $1"#,
        &[text(&id)],
    )
    .await?)
}

/// Wakes this replica's worker when a request queued a message (other replicas find it
/// within [`POLL`]).
#[derive(Default)]
pub(crate) struct Bell(Notify);

impl Bell {
    pub(crate) fn ring(&self) {
        self.0.notify_one();
    }
}

struct Claimed {
    id: String,
    kind: String,
    recipient: String,
    subject: String,
    text: String,
    html: String,
    attempts: i32,
}

/// The oldest due message, claimed for this worker (see the module comment).
async fn claim(db: &Db) -> Result<Option<Claimed>, StoreError> {
    let mut conn = db.conn().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .opt_row(
            r#"select "id", "kind", "recipient", "subject", "textBody", "htmlBody", "attempts"
               from "latchkey_outbox"
               where "sentAt" is null and "failedAt" is null and "dueAt" <= now()
               order by "dueAt" limit 1
               for update skip locked"#,
            &[],
        )
        .await?;
    let Some(row) = row else {
        tx.commit().await?;
        return Ok(None);
    };
    let claimed = Claimed {
        id: row.get(0),
        kind: row.get(1),
        recipient: row.get(2),
        subject: row.get(3),
        text: row.get(4),
        html: row.get(5),
        attempts: row.get::<_, i32>(6) + 1,
    };
    let lease_end = Utc::now() + chrono_of(LEASE);
    tx.exec(
        r#"update "latchkey_outbox" set "attempts" = $2, "dueAt" = $3 where "id" = $1"#,
        &[
            text(&claimed.id),
            int4(&claimed.attempts),
            timestamptz(&lease_end),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(claimed))
}

async fn mark_sent(db: &Db, id: &str) -> Result<(), StoreError> {
    let conn = db.conn().await?;
    conn.exec(
        r#"update "latchkey_outbox" set "sentAt" = $2, "textBody" = '', "htmlBody" = '', "lastError" = null
           where "id" = $1"#,
        &[text(&id), timestamptz(&Utc::now())],
    )
    .await?;
    Ok(())
}

async fn mark_failed_attempt(
    db: &Db,
    msg: &Claimed,
    error: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let conn = db.conn().await?;
    let error: String = error.chars().take(1000).collect();
    if msg.attempts >= MAX_ATTEMPTS {
        conn.exec(
            r#"update "latchkey_outbox" set "failedAt" = $2, "lastError" = $3 where "id" = $1"#,
            &[text(&msg.id), timestamptz(&Utc::now()), text(&error)],
        )
        .await?;
        return Ok(None);
    }
    let due = Utc::now() + chrono_of(backoff(msg.attempts));
    conn.exec(
        r#"update "latchkey_outbox" set "dueAt" = $2, "lastError" = $3 where "id" = $1"#,
        &[text(&msg.id), timestamptz(&due), text(&error)],
    )
    .await?;
    Ok(Some(due))
}

/// Old outbox rows, and expired `verification` rows (reset tokens nobody used), which
/// Better-Auth deletes lazily the same way.
async fn purge(db: &Db) -> Result<u64, StoreError> {
    let conn = db.conn().await?;
    let now = Utc::now();
    let sent_before = now - chrono_of(SENT_RETENTION);
    let failed_before = now - chrono_of(FAILED_RETENTION);
    let outbox = conn
        .exec(
            r#"delete from "latchkey_outbox" where "sentAt" < $1 or "failedAt" < $2"#,
            &[timestamptz(&sent_before), timestamptz(&failed_before)],
        )
        .await?;
    let expired = conn
        .exec(
            r#"delete from "verification" where "expiresAt" < $1"#,
            &[timestamptz(&now)],
        )
        .await?;
    Ok(outbox + expired)
}

/// Messages neither sent nor given up (due now or waiting for a retry).
async fn pending(db: &Db) -> Result<i64, StoreError> {
    let conn = db.conn().await?;
    let row = conn
        .row(
            r#"select count(*) from "latchkey_outbox" where "sentAt" is null and "failedAt" is null"#,
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Sends one claimed message and records the outcome. `true` if it went out.
async fn deliver(db: &Db, transport: &Transport, metrics: &AuthMetrics, msg: Claimed) -> bool {
    let outgoing = Outgoing {
        id: &msg.id,
        kind: &msg.kind,
        recipient: &msg.recipient,
        subject: &msg.subject,
        text: &msg.text,
        html: &msg.html,
    };
    match transport.send(&outgoing).await {
        Ok(()) => {
            metrics.mail(&msg.kind, "sent");
            tracing::info!(target: "mail", id = %msg.id, kind = %msg.kind, attempt = msg.attempts, "mail sent");
            if let Err(e) = mark_sent(db, &msg.id).await {
                // The lease makes it due again later: sent twice rather than lost.
                tracing::warn!(id = %msg.id, "mail sent but not marked sent ({e}); it may be sent again");
            }
            true
        }
        Err(e) => {
            match mark_failed_attempt(db, &msg, &e.0).await {
                Ok(Some(due)) => {
                    metrics.mail(&msg.kind, "retry");
                    tracing::warn!(
                    target: "mail",
                    id = %msg.id,
                    kind = %msg.kind,
                    attempt = msg.attempts,
                    next = %due.to_rfc3339(),
                    "mail not sent, will retry: {}", e.0
                    )
                }
                Ok(None) => {
                    metrics.mail(&msg.kind, "failed");
                    tracing::error!(
                    target: "mail",
                    id = %msg.id,
                    kind = %msg.kind,
                    attempts = msg.attempts,
                    "mail not sent after {MAX_ATTEMPTS} attempts, giving up: {}", e.0
                    )
                }
                Err(db_err) => tracing::warn!(
                    id = %msg.id,
                    "mail not sent ({}) and the attempt not recorded ({db_err})", e.0
                ),
            }
            false
        }
    }
}

/// The worker: sends due messages until the shutdown, which it checks between messages.
pub(crate) async fn run(
    db: Db,
    transport: Arc<Transport>,
    bell: Arc<Bell>,
    metrics: AuthMetrics,
    mut shutdown: ShutdownSignal,
) {
    let mut last_purge: Option<std::time::Instant> = None;
    let mut db_warned = false;
    loop {
        if shutdown.is_triggered() {
            return;
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            match purge(&db).await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "purged old outbox rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!("purging the outbox failed: {e}"),
            }
            last_purge = Some(std::time::Instant::now());
        }
        match claim(&db).await {
            Ok(Some(msg)) => {
                db_warned = false;
                deliver(&db, &transport, &metrics, msg).await;
                continue;
            }
            Ok(None) => {
                db_warned = false;
                // Nothing due: a good moment to count what waits (retries not yet due), for
                // the outbox-depth gauge.
                if let Ok(n) = pending(&db).await {
                    metrics.mail_pending(n);
                }
            }
            Err(e) => {
                if !db_warned {
                    tracing::warn!("mail outbox: cannot read the outbox: {e}");
                    db_warned = true;
                }
            }
        }
        tokio::select! {
            () = bell.0.notified() => {}
            () = shutdown.triggered() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(9), Duration::from_secs(1280));
        assert_eq!(backoff(10), Duration::from_secs(1800));
        assert_eq!(backoff(1000), Duration::from_secs(1800));
    }
}
