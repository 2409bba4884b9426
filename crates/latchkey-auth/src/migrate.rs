//! Schema migrations: the SQL files in `/migrations`, compiled in, applied in order and recorded
//! in `latchkey_schema_migrations`. The whole run holds a transaction-scoped advisory lock, so
//! replicas that start together apply each migration once and the others wait, then see it done.

use latchkey_core::sql::{int8, text, Db, Sql};

use crate::error::AuthError;

/// `pg_advisory_xact_lock` key for migrations ("latchkey-migrate").
const MIGRATE_LOCK: i64 = 0x6c61_7463_6b65_7902;

/// (version, name, sql). Append only; never edit a released migration.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "better_auth_schema",
        include_str!("../../../migrations/0001_better_auth_schema.sql"),
    ),
    (
        2,
        "rate_limit",
        include_str!("../../../migrations/0002_rate_limit.sql"),
    ),
    (
        3,
        "audit",
        include_str!("../../../migrations/0003_audit.sql"),
    ),
    (
        4,
        "outbox",
        include_str!("../../../migrations/0004_outbox.sql"),
    ),
];

/// Applies pending migrations; returns the versions applied by this call.
pub(crate) async fn run(db: &Db) -> Result<Vec<i64>, AuthError> {
    let mut conn = db.conn().await?;
    let tx = conn.transaction().await?;
    // Waiting for another replica's migration may take a while: not bounded.
    tx.batch_execute_unbounded(&format!("select pg_advisory_xact_lock({MIGRATE_LOCK})"))
        .await?;
    tx.batch_execute(
        r#"create table if not exists "latchkey_schema_migrations" (
               "version" bigint primary key,
               "name" text not null,
               "appliedAt" timestamptz not null default now())"#,
    )
    .await?;
    let done: Vec<i64> = tx
        .rows(r#"select "version" from "latchkey_schema_migrations""#, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute_unbounded(sql).await.map_err(|e| {
            AuthError::internal(format!("migration {version} ({name}) failed: {e}"))
        })?;
        tx.exec(
            r#"insert into "latchkey_schema_migrations" ("version", "name") values ($1, $2)"#,
            &[int8(version), text(name)],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(applied)
}
