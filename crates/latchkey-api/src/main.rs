use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use latchkey_api::{App, Config};
use latchkey_core::{notify, server, ConfigError, Source};

#[derive(Parser)]
#[command(
    name = "latchkey-api",
    version,
    about = "Resource server for Better-Auth JWTs"
)]
struct Cli {
    /// TOML settings file (also LATCHKEY_CONFIG); the environment takes precedence.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Serve requests (the default).
    Serve,
    /// Load and validate the configuration, then exit.
    CheckConfig {
        /// Also connect to what the settings name (the revocation database) and say what fails.
        #[arg(long)]
        connect: bool,
    },
}

/// Configuration errors exit with 2, distinct from runtime failures (1).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    latchkey_core::process::harden();
    let cli = Cli::parse();
    // Before anything is built: the verifier and the pool warn about insecure settings
    // (plain-http JWKS, Postgres without TLS), and `check-config` must show that too.
    // LATCHKEY_LOG is read from the environment only, so nothing else has to come first.
    latchkey_core::log::init();
    let runtime = match latchkey_core::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let loaded = load(cli.config).and_then(|config| {
            let app = App::new(&config)?;
            Ok((config, app))
        });
        let (config, app) = match loaded {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        match cli.command.unwrap_or(Command::Serve) {
            Command::CheckConfig { connect } => {
                if connect {
                    if let Err(e) = app.check_connections().await {
                        eprintln!("revocation database: {e}");
                        return ExitCode::FAILURE;
                    }
                    println!("connections ok");
                }
                println!("configuration ok");
                ExitCode::SUCCESS
            }
            Command::Serve => serve(config, app).await,
        }
    })
}

fn load(file: Option<PathBuf>) -> Result<Config, ConfigError> {
    Config::load(&Source::from_process(file.as_deref())?)
}

async fn serve(config: Config, app: App) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    // The auth daemon may well start after us: the refresher retries with backoff and
    // /readyz says 503 until the first key set is in.
    let refresher = app.verifier().spawn_refresher();
    tracing::info!(
        listen = %config.listen,
        jwks = %config.jwks_url,
        issuer = %config.issuer,
        revocation = matches!(config.revocation, latchkey_api::config::Revocation::Session { .. }),
        proxy = config.upstream.is_some(),
        upstream_cors = ?config.upstream_cors,
        cors = ?app.cors_origins(),
        tls = config.tls.is_some(),
        require_verified_email = config.require_verified_email,
        jwt_cache_size = config.jwt_cache_size,
        "latchkey-api listening"
    );
    if config.cors.enabled && config.cors.origins.is_empty() {
        tracing::info!(
            "CORS is off: LATCHKEY_CORS_ORIGINS (or BETTER_AUTH_TRUSTED_ORIGINS) lists no origin"
        );
    }
    notify::ready();
    let tls = app.tls.clone();
    let draining = app.draining.clone();
    let app = Arc::new(app);
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = config.metrics_listen {
        let metrics_listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {addr} for metrics: {e}");
                return ExitCode::FAILURE;
            }
        };
        let scrape_app = app.clone();
        tokio::spawn(latchkey_core::metrics::serve(
            metrics_listener,
            app.metrics.clone(),
            Arc::new(move || scrape_app.refresh_metrics()),
            async {
                let _ = metrics_stopped.await;
            },
        ));
    }
    server::serve(
        listener,
        tls,
        config.server.clone(),
        draining,
        move |req, peer| {
            let app = app.clone();
            async move { app.handle(req, peer).await }
        },
        async {
            server::shutdown_signal().await;
            notify::stopping();
        },
    )
    .await;
    let _ = stop_metrics.send(());
    refresher.abort();
    ExitCode::SUCCESS
}
