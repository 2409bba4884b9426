//! Logging: `tracing` to stderr (journald picks it up), filtered by `LATCHKEY_LOG` or `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Appended to every filter, whatever the operator asks for: at debug level tokio-postgres logs
/// query parameters, which include session tokens, password hashes and encrypted keys.
const NEVER_VERBOSE: &str = "tokio_postgres=warn";

/// `LATCHKEY_LOG_FORMAT=json` writes one JSON object per line (with the request span and its
/// id), for log pipelines; anything else the human-readable lines.
pub fn init() {
    let wanted = std::env::var("LATCHKEY_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(format!("{wanted},{NEVER_VERBOSE}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{NEVER_VERBOSE}")));
    let json = std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|f| f.trim() == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
