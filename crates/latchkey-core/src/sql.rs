//! How our code talks to Postgres: through any transaction-mode pooler, in bounded time.
//!
//! * **Unnamed statements by default.** tokio-postgres prepares each `query`/`execute` as a
//!   named statement (`s0`, `s1`, ...). Behind a transaction pooler (PgBouncer in transaction
//!   mode, Neon's and Supabase's poolers, RDS Proxy) consecutive statements of one client land
//!   on different server connections, where those names collide (another client's `s0` is
//!   another query) or do not exist. The typed variants (`query_typed`, `execute_typed`) send
//!   Parse/Bind/Execute of an unnamed statement in one round trip, which every pooler passes
//!   through; the workspace's `clippy.toml` disallows the named ones everywhere but here.
//! * **Prepared statements where the connection allows them** ([`Statements::Prepared`],
//!   `LATCHKEY_DB_STATEMENTS=prepared`): each connection prepares a statement once and keeps
//!   it, so Postgres parses and plans it once instead of on every call (the get-session join
//!   cost 91 µs of Postgres CPU unnamed, 20 µs prepared, in pgbench; BENCHMARKS.md). Only for
//!   a direct connection, a session-mode pooler, or one that tracks prepared statements
//!   itself (PgBouncer ≥ 1.21 with `max_prepared_statements`): it cannot be detected safely
//!   (Neon's pooler listens on Postgres' own port), so it is a setting.
//! * **Bounded time.** Every call is cut off after the configured timeout (the pooler may hold
//!   a query while its server login fails, a restarting Postgres may accept and never answer).
//!   A connection whose call timed out is not returned to the pool: its state is unknown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient as _, Row, Statement};

/// One query parameter with its Postgres type (the type is what makes the statement unnamed).
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// A `text` parameter (also `Option<String>`/`Option<&str>` for nullable columns).
pub fn text(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::TEXT)
}

/// A `timestamptz` parameter (`DateTime<Utc>`).
pub fn timestamptz(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::TIMESTAMPTZ)
}

/// A `boolean` parameter.
pub fn boolean(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::BOOL)
}

/// An `integer` parameter (`i32`).
pub fn int4(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::INT4)
}

/// A `bigint` parameter (`i64`).
pub fn int8(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::INT8)
}

/// Why a database call failed, before any meaning is given to it.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had from the pool in time (or it could not be opened).
    Pool(deadpool_postgres::PoolError),
    /// The server (or the pooler in front of it) answered with an error, or the connection
    /// broke.
    Pg(tokio_postgres::Error),
    /// The call did not finish within the timeout.
    Timeout(Duration),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Pool(e) => f.write_str(&crate::error_chain(e)),
            DbError::Pg(e) => f.write_str(&crate::error_chain(e)),
            DbError::Timeout(t) => write!(f, "database call timed out after {t:?}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::Pool(e)
    }
}

/// How statements reach Postgres (`LATCHKEY_DB_STATEMENTS`; see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Statements {
    /// Parse, bind and execute an unnamed statement per call: works through every pooler.
    #[default]
    Unnamed,
    /// Prepared once per connection and kept: less Postgres work per call, but only safe
    /// where one client's statements stay on one server connection.
    Prepared,
}

impl Statements {
    pub const SETTING: &'static str = "LATCHKEY_DB_STATEMENTS";

    pub fn from_source(src: &crate::config::Source) -> Result<Self, crate::config::ConfigError> {
        match src.get(Self::SETTING)?.as_deref().map(str::trim) {
            None | Some("unnamed") => Ok(Statements::Unnamed),
            Some("prepared") => Ok(Statements::Prepared),
            Some(other) => Err(crate::config::ConfigError::new(
                Self::SETTING,
                format!("invalid value {other:?}: expected unnamed or prepared"),
            )),
        }
    }
}

/// The pool, with the timeout every call on its connections gets.
#[derive(Clone)]
pub struct Db {
    pool: deadpool_postgres::Pool,
    timeout: Duration,
    statements: Statements,
}

impl Db {
    pub fn new(pool: deadpool_postgres::Pool, timeout: Duration) -> Self {
        Self {
            pool,
            timeout,
            statements: Statements::Unnamed,
        }
    }

    pub fn with_statements(self, statements: Statements) -> Self {
        Self { statements, ..self }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A connection from the pool, waited for at most the timeout.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        let object = match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(got) => got?,
            Err(_) => return Err(DbError::Timeout(self.timeout)),
        };
        Ok(Conn {
            object: Some(object),
            timeout: self.timeout,
            statements: self.statements,
            broken: AtomicBool::new(false),
        })
    }

    /// Closes pooled connections unused for `idle`; returns how many. Poolers and managed
    /// Postgres count every open connection against a small limit (and Neon suspends a
    /// compute only when none is left), so a quiet replica should not sit on its pool.
    pub fn release_idle(&self, idle: Duration) -> usize {
        self.pool
            .retain(|_, metrics| metrics.last_used() < idle)
            .removed
            .len()
    }

    /// Runs [`Db::release_idle`] until the shutdown, checking a few times per `idle`.
    pub async fn release_idle_connections(
        self,
        idle: Duration,
        mut shutdown: crate::shutdown::ShutdownSignal,
    ) {
        let every = (idle / 4).max(Duration::from_secs(1));
        while shutdown.sleep(every).await {
            let closed = self.release_idle(idle);
            if closed > 0 {
                tracing::debug!(closed, "closed idle database connections");
            }
        }
    }

    /// The pool's state, for readiness and metrics.
    pub fn status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }
}

/// A pooled connection. Dropped, it goes back to the pool, unless a call on it timed out.
pub struct Conn {
    object: Option<deadpool_postgres::Object>,
    timeout: Duration,
    statements: Statements,
    broken: AtomicBool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.broken.load(Ordering::Relaxed) {
            if let Some(object) = self.object.take() {
                // Detached from the pool and closed: the server abandons the query.
                drop(deadpool_postgres::Object::take(object));
            }
        }
    }
}

impl Conn {
    fn client(&self) -> Result<&tokio_postgres::Client, DbError> {
        Ok(self.wrapper()?)
    }

    fn wrapper(&self) -> Result<&deadpool_postgres::ClientWrapper, DbError> {
        match &self.object {
            Some(object) => Ok(object),
            None => Err(DbError::Timeout(self.timeout)),
        }
    }

    /// `BEGIN`; the transaction rolls back unless committed.
    pub async fn transaction(&mut self) -> Result<Tx<'_>, DbError> {
        let timeout = self.timeout;
        let broken = &self.broken;
        let Some(object) = self.object.as_mut() else {
            return Err(DbError::Timeout(timeout));
        };
        let tx = bounded(timeout, broken, object.transaction()).await?;
        Ok(Tx {
            tx,
            timeout,
            statements: self.statements,
            broken,
        })
    }

    /// A simple-protocol query without parameters (health checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.client()?;
        bounded(self.timeout, &self.broken, client.simple_query("select 1")).await?;
        Ok(())
    }
}

/// A transaction on a [`Conn`].
pub struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    timeout: Duration,
    statements: Statements,
    broken: &'a AtomicBool,
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), DbError> {
        bounded(self.timeout, self.broken, self.tx.commit()).await
    }

    /// Several statements without parameters, by the simple protocol (migrations).
    pub async fn batch_execute(&self, sql: &str) -> Result<(), DbError> {
        bounded(self.timeout, self.broken, self.tx.batch_execute(sql)).await
    }

    /// Like [`Tx::batch_execute`], without the timeout: a migration may legitimately run long.
    pub async fn batch_execute_unbounded(&self, sql: &str) -> Result<(), DbError> {
        Ok(self.tx.batch_execute(sql).await?)
    }
}

async fn bounded<T>(
    timeout: Duration,
    broken: &AtomicBool,
    call: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            broken.store(true, Ordering::Relaxed);
            Err(DbError::Timeout(timeout))
        }
    }
}

/// Statements on a connection or in a transaction: typed, bounded, unnamed unless the pool
/// was made for prepared ones.
pub trait Sql: Sync {
    fn rows(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send;

    /// At most one row.
    fn opt_row(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send;

    /// Exactly one row.
    fn row(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Row, DbError>> + Send;

    /// The number of rows changed.
    fn exec(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<u64, DbError>> + Send;
}

/// What a [`Conn`] or a [`Tx`] hands the typed calls: the tokio-postgres client or
/// transaction, the timeout and the flag that keeps a timed-out connection out of the pool.
trait Backend: Sync {
    type Client: tokio_postgres::GenericClient + Sync;
    fn parts(&self) -> Result<(&Self::Client, Duration, &AtomicBool), DbError>;

    /// `Some(statement)` when this connection keeps prepared statements (prepared now if it
    /// was not yet); `None` for unnamed ones.
    fn prepared(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl Future<Output = Result<Option<Statement>, DbError>> + Send;
}

fn types(params: &[Param<'_>]) -> Vec<Type> {
    params.iter().map(|(_, t)| t.clone()).collect()
}

/// The values alone, for a prepared statement (it has the types).
fn values<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|(v, _)| *v).collect()
}

impl Backend for Conn {
    type Client = tokio_postgres::Client;
    fn parts(&self) -> Result<(&Self::Client, Duration, &AtomicBool), DbError> {
        Ok((self.client()?, self.timeout, &self.broken))
    }

    async fn prepared(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Statement>, DbError> {
        if self.statements == Statements::Unnamed {
            return Ok(None);
        }
        let wrapper = self.wrapper()?;
        let types = types(params);
        #[allow(clippy::disallowed_methods)] // the one place for named statements, by setting
        let prepare = wrapper.prepare_typed_cached(sql, &types);
        Ok(Some(bounded(self.timeout, &self.broken, prepare).await?))
    }
}

impl<'a> Backend for Tx<'a> {
    type Client = tokio_postgres::Transaction<'a>;
    fn parts(&self) -> Result<(&Self::Client, Duration, &AtomicBool), DbError> {
        Ok((&self.tx, self.timeout, self.broken))
    }

    async fn prepared(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Statement>, DbError> {
        if self.statements == Statements::Unnamed {
            return Ok(None);
        }
        let types = types(params);
        let prepare = self.tx.prepare_typed_cached(sql, &types);
        Ok(Some(bounded(self.timeout, self.broken, prepare).await?))
    }
}

impl<B: Backend> Sql for B {
    async fn rows(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let prepared = self.prepared(sql, params).await?;
        let (c, timeout, broken) = self.parts()?;
        match prepared {
            Some(st) => bounded(timeout, broken, c.query(&st, &values(params))).await,
            None => bounded(timeout, broken, c.query_typed(sql, params)).await,
        }
    }

    async fn opt_row(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        let prepared = self.prepared(sql, params).await?;
        let (c, timeout, broken) = self.parts()?;
        match prepared {
            Some(st) => bounded(timeout, broken, c.query_opt(&st, &values(params))).await,
            None => bounded(timeout, broken, c.query_typed_opt(sql, params)).await,
        }
    }

    async fn row(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        let prepared = self.prepared(sql, params).await?;
        let (c, timeout, broken) = self.parts()?;
        match prepared {
            Some(st) => bounded(timeout, broken, c.query_one(&st, &values(params))).await,
            None => bounded(timeout, broken, c.query_typed_one(sql, params)).await,
        }
    }

    async fn exec(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let prepared = self.prepared(sql, params).await?;
        let (c, timeout, broken) = self.parts()?;
        match prepared {
            Some(st) => bounded(timeout, broken, c.execute(&st, &values(params))).await,
            None => bounded(timeout, broken, c.execute_typed(sql, params)).await,
        }
    }
}
