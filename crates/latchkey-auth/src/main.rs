//! `latchkey-auth`: serve (default), migrate, keys rotate, check-config.

fn main() -> std::process::ExitCode {
    latchkey_auth::main()
}
