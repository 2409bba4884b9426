//! The command line and the daemon's life: configuration, migrations, the listener, the
//! background workers and their shutdown.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use latchkey_core::cors::{Cors, BASE_ALLOW_HEADERS};
use latchkey_core::shutdown::{Shutdown, ShutdownSignal};
use latchkey_core::sql::Db;
use latchkey_core::{db, notify, server, Source};

use crate::config::AuthConfig;
use crate::cookies::CookieSigner;
use crate::error::AuthError;
use crate::keys::Keys;
use crate::origin::Origins;
use crate::password::Hasher;
use crate::reply::{SET_AUTH_JWT, SET_AUTH_TOKEN};
use crate::state::State;
use crate::{migrate, routes};

/// How long a stopping daemon waits for its background workers to finish their current job.
const WORKER_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "latchkey-auth",
    version,
    about = "Better-Auth compatible auth daemon"
)]
struct Cli {
    /// TOML config file (settings under the environment's); also LATCHKEY_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Signing key management.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Load and validate the configuration, then exit.
    CheckConfig {
        /// Also connect to the database, check the schema and decrypt the signing key, and
        /// say what fails.
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Retire the current signing key (it stays published for the grace period) and make a new one.
    Rotate,
    /// Remove a key from the JWKS at once (after a compromise); a current key is replaced first.
    Revoke {
        /// The key id (`kid` of its JWTs, `id` in the `jwks` table).
        kid: String,
    },
}

/// The whole program; `main.rs` only calls this.
pub fn main() -> ExitCode {
    latchkey_core::process::harden();
    keep_hash_memory_returnable();
    let cli = Cli::parse();
    latchkey_core::log::init();
    let config =
        match Source::from_process(cli.config.as_deref()).and_then(|s| AuthConfig::load(&s)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
    if let Some(Command::CheckConfig { connect: false }) = cli.command {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    let runtime = match latchkey_core::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve(config).await,
            Some(Command::Migrate) => {
                let pool = pool(&config)?;
                let applied = migrate::run(&pool).await?;
                println!("migrations applied: {applied:?}");
                Ok(())
            }
            Some(Command::Keys {
                action: KeysCommand::Rotate,
            }) => {
                let pool = pool(&config)?;
                migrate::run(&pool).await?;
                let keys = Keys::new(pool, &config.secret, config.keys.clone());
                let kid = keys.rotate().await?;
                println!("new signing key: {kid}");
                Ok(())
            }
            Some(Command::Keys {
                action: KeysCommand::Revoke { kid },
            }) => {
                let pool = pool(&config)?;
                migrate::run(&pool).await?;
                let keys = Keys::new(pool, &config.secret, config.keys.clone());
                let replacement = keys.revoke(&kid).await?;
                println!("revoked key {kid}: removed from the JWKS");
                if let Some(new) = replacement {
                    println!("new signing key: {new}");
                }
                Ok(())
            }
            Some(Command::CheckConfig { .. }) => check_connections(&config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-auth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each password hash allocates one large block (19 MiB for argon2id, 32 MiB for scrypt).
/// glibc raises its mmap threshold after the first such block is freed, and from then on
/// serves them from per-thread arenas that never shrink: RSS climbed past 400 MB under a
/// sign-in flood (BENCHMARKS.md). A fixed threshold keeps them mmapped, so freeing returns
/// the memory to the system.
fn keep_hash_memory_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn pool(config: &AuthConfig) -> Result<Db, AuthError> {
    let pool = db::pool(&config.database_url, config.db_pool_size)
        .map_err(|e| AuthError::internal(e.to_string()))?;
    Ok(Db::new(pool, config.db_timeout).with_statements(config.db_statements))
}

/// Migrations at start-up, retried for a while so that the daemon may start before Postgres.
async fn migrate_with_retry(db: &Db) -> Result<(), AuthError> {
    let mut delay = Duration::from_millis(250);
    for attempt in 1.. {
        match migrate::run(db).await {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(?applied, "applied migrations");
                }
                return Ok(());
            }
            Err(AuthError::Unavailable(e)) if attempt < 20 => {
                tracing::warn!("database not reachable yet ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn serve(config: AuthConfig) -> Result<(), AuthError> {
    let tls = match &config.tls {
        Some(files) => Some(
            latchkey_core::tls::server_config(files)
                .map_err(|e| AuthError::internal(e.to_string()))?,
        ),
        None => None,
    };
    let db = pool(&config)?;
    migrate_with_retry(&db).await?;
    let keys = Arc::new(Keys::new(db.clone(), &config.secret, config.keys.clone()));
    keys.ensure().await?;
    let hasher = Hasher::new(
        config.hash_scheme,
        config.hash_concurrency,
        config.hash_queue_timeout,
    )?;
    learn_password_schemes(&db, &hasher).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| AuthError::internal(format!("cannot listen on {}: {e}", config.listen)))?;
    let cors = config.cors.then(|| cors_policy(&config)).transpose()?;
    let mail_transport = crate::mail::Transport::new(&config.mail)
        .map_err(AuthError::internal)?
        .map(Arc::new);
    let providers = crate::oauth::Providers::new(config.social.providers.clone())
        .map_err(AuthError::internal)?;
    let mut metrics = latchkey_core::metrics::Metrics::new();
    let telemetry =
        crate::telemetry::AuthMetrics::register(metrics.registry_mut(), hasher.wait_histogram());
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            AuthError::internal(format!("cannot listen on {addr} for metrics: {e}"))
        })?),
        None => None,
    };
    let state = Arc::new(State {
        metrics: Arc::new(metrics),
        telemetry,
        cookies: CookieSigner::new(config.secret.clone(), &config.cookies),
        origins: Origins::new(config.origin_patterns()),
        cors,
        draining: Default::default(),
        db,
        hasher,
        keys: keys.clone(),
        config,
        warned_forwarded_for: Default::default(),
        outbox_bell: Default::default(),
        providers,
    });
    state.providers.discover_in_background();
    let shutdown = Shutdown::new();
    tokio::spawn(keys.maintain(shutdown.signal()));
    tokio::spawn(purge_rate_limits(state.clone(), shutdown.signal()));
    tokio::spawn(
        state
            .hasher
            .clone()
            .release_idle_memory_until(HASH_MEMORY_IDLE, shutdown.signal()),
    );
    if let Some(transport) = mail_transport {
        tokio::spawn(crate::outbox::run(
            state.db.clone(),
            transport,
            state.outbox_bell.clone(),
            state.telemetry.clone(),
            shutdown.signal(),
        ));
    }
    if !state.config.db_idle_timeout.is_zero() {
        tokio::spawn(
            state
                .db
                .clone()
                .release_idle_connections(state.config.db_idle_timeout, shutdown.signal()),
        );
    }
    tracing::info!(
        listen = %state.config.listen,
        url = %state.config.base_url,
        tls = state.config.tls.is_some(),
        providers = %state.providers.ids().join(","),
        "latchkey-auth ready"
    );
    if let Some(listener) = metrics_listener {
        let scrape_state = state.clone();
        let refresh: Arc<dyn Fn() + Send + Sync> =
            Arc::new(move || scrape_state.telemetry.refresh(&scrape_state));
        let mut stop = shutdown.signal();
        tokio::spawn(latchkey_core::metrics::serve(
            listener,
            state.metrics.clone(),
            refresh,
            async move { stop.triggered().await },
        ));
    }
    notify::ready();
    let handler_state = state.clone();
    server::serve(
        listener,
        tls,
        state.config.server.clone(),
        state.draining.clone(),
        move |req, peer| routes::handle(handler_state.clone(), req, peer),
        async {
            server::shutdown_signal().await;
            notify::stopping();
        },
    )
    .await;
    shutdown.trigger();
    if !shutdown.drained(WORKER_GRACE).await {
        tracing::warn!("background workers still busy after {WORKER_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// `check-config --connect`: what serving needs from the database, checked without changing
/// it (no migration, no key made).
async fn check_connections(config: &AuthConfig) -> Result<(), AuthError> {
    let db = pool(config)?;
    let conn = db.conn().await?;
    conn.ping().await?;
    println!("database: connected");
    let applied = crate::store::applied_migrations(&conn).await?;
    println!("database: migrations applied {applied:?}");
    drop(conn);
    let keys = Keys::new(db, &config.secret, config.keys.clone());
    keys.reload().await?;
    if keys.has_signing_key() {
        println!("signing key: decrypted with BETTER_AUTH_SECRET");
    } else {
        println!("signing key: none yet (serve creates one)");
    }
    println!("configuration ok");
    Ok(())
}

/// Every password check pays for each scheme the database holds (password.rs): find them.
async fn learn_password_schemes(db: &Db, hasher: &Hasher) -> Result<(), AuthError> {
    let conn = db.conn().await?;
    let (argon2id, scrypt) = crate::store::password_schemes(&conn).await?;
    if argon2id {
        hasher.scheme_in_use(crate::password::HashScheme::Argon2id);
    }
    if scrypt {
        hasher.scheme_in_use(crate::password::HashScheme::Scrypt);
    }
    let schemes = hasher.schemes_in_use();
    if schemes.len() > 1 {
        tracing::info!(
            ?schemes,
            "password schemes in use: each sign-in verifies one hash per scheme, so that \
             accounts in either scheme and unknown emails take the same time"
        );
    }
    Ok(())
}

/// CORS for the trusted origins, with the headers Better-Auth's client sends and reads.
fn cors_policy(config: &AuthConfig) -> Result<Cors, AuthError> {
    Cors::new(
        config.origin_patterns(),
        "GET, POST, OPTIONS",
        &BASE_ALLOW_HEADERS.join(", "),
        &format!("{SET_AUTH_TOKEN}, {SET_AUTH_JWT}"),
    )
    .map_err(|e| AuthError::internal(format!("CORS headers: {e}")))
}

/// Hourly: drops idle rate-limit counters and audit events past their retention (any replica
/// may do it; the deletes are idempotent).
/// Argon2 memory unused this long is freed (see `Hasher::release_idle_memory`).
const HASH_MEMORY_IDLE: Duration = Duration::from_secs(10);

/// Purges expired rate-limit counters and audit events at start-up and hourly after (at
/// start-up too, or a daemon restarted more often than hourly would never purge).
async fn purge_rate_limits(state: Arc<State>, mut shutdown: ShutdownSignal) {
    loop {
        if let Err(e) = state.config.rate_limit.purge(&state.db).await {
            tracing::warn!("purging rate-limit counters failed: {e}");
        }
        let retention = state.config.audit_retention;
        if !retention.is_zero() {
            let purged = match state.db.conn().await {
                Ok(conn) => crate::audit::purge(&conn, retention).await,
                Err(e) => Err(e),
            };
            if let Err(e) = purged {
                tracing::warn!("purging audit events failed: {e}");
            }
        }
        if !shutdown.sleep(Duration::from_secs(3600)).await {
            return;
        }
    }
}
