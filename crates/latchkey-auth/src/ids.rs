//! Better-Auth's random ids (docs/compatibility.md#ids): 32 characters from `[a-zA-Z0-9]`, each from one random
//! byte, bytes ≥ 248 rejected so that every symbol is equally likely.

use rand::RngCore;

const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// The largest multiple of 62 that fits a byte; bytes at or above it would bias the result.
const REJECT_FROM: u16 = 248;

pub(crate) fn random_string(len: usize) -> String {
    from_alphabet(ALPHABET, REJECT_FROM, len)
}

/// Better-Auth's `generateRandomString(len, "0-9", "a-z")`: the delete-account token.
pub(crate) fn random_lower(len: usize) -> String {
    // 252 = 7 × 36, the largest multiple of 36 that fits a byte.
    from_alphabet(b"0123456789abcdefghijklmnopqrstuvwxyz", 252, len)
}

/// `[A-Za-z0-9_-]`, 64 symbols, so every byte maps without bias: OAuth state, PKCE verifiers
/// and nonces.
pub(crate) fn random_url_safe(len: usize) -> String {
    from_alphabet(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        // 256 is a multiple of 64: nothing to reject.
        256,
        len,
    )
}

/// Symbols of `alphabet` from random bytes; bytes at or above `reject_from` (the largest
/// multiple of the alphabet's size that fits a byte) are skipped, so that no symbol is favoured.
fn from_alphabet(alphabet: &[u8], reject_from: u16, len: usize) -> String {
    let n = alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        for &b in buf.iter().filter(|&&b| u16::from(b) < reject_from) {
            if out.len() == len {
                break;
            }
            out.push(alphabet[usize::from(b) % n] as char);
        }
    }
    out
}

/// A row id or session token.
pub(crate) fn new_id() -> String {
    random_string(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_better_auth_shape() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_id(), new_id());
        let lower = random_lower(32);
        assert_eq!(lower.len(), 32);
        assert!(lower
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    }

    #[test]
    fn every_symbol_appears_roughly_uniformly() {
        let sample = random_string(62 * 400);
        let mut counts = [0usize; 128];
        for b in sample.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHABET {
            let n = counts[usize::from(c)];
            assert!(
                (250..550).contains(&n),
                "symbol {} seen {n} times",
                c as char
            );
        }
    }
}
