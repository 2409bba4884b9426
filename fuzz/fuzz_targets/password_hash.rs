//! The stored-password-hash parser: argon2 PHC strings and Better-Auth's scrypt
//! `salt:hex(key)`, as sign-in reads them before any key derivation.
//!
//! Input: the stored hash text. Full verification runs only for argon2 hashes with tiny
//! parameters (the real cost comes from the database, not from clients).
#![no_main]

use latchkey_auth::fuzzing::{parse_password_hash, verify_cheap, StoredHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = std::str::from_utf8(data) else {
        return;
    };
    match parse_password_hash(stored) {
        None => assert_eq!(verify_cheap("fuzz-password", stored), Some(Err(()))),
        Some(StoredHash::Scrypt { salt, key }) => {
            assert!(!stored.starts_with("$argon2"));
            assert_eq!(key.len(), 64);
            assert!(!salt.is_empty() && !salt.contains(':'));
            // The text is exactly salt:hex(key), the hex in either case.
            let (s, k) = stored.split_once(':').unwrap();
            assert_eq!(s, salt);
            assert_eq!(k.to_ascii_lowercase(), hex(&key));
        }
        Some(StoredHash::Argon2 {
            algorithm,
            m_cost,
            t_cost,
            p_cost,
            weaker_than_ours,
        }) => {
            assert!(stored.starts_with("$argon2"));
            assert!(algorithm.starts_with("argon2"));
            // Ours: m=19456, t=2, p=1. Any stated parameter below that asks for a rehash.
            if m_cost.is_some_and(|m| m < 19_456)
                || t_cost.is_some_and(|t| t < 2)
                || p_cost.is_some_and(|p| p < 1)
            {
                assert!(weaker_than_ours, "{stored}");
            }
            // A wrong password never verifies, whatever the hash; two different passwords
            // cannot both be right.
            let a = verify_cheap("fuzz-password", stored);
            let b = verify_cheap("another password", stored);
            if let (Some(Ok(a)), Some(Ok(b))) = (a, b) {
                assert!(!(a && b), "{stored}");
            }
        }
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
