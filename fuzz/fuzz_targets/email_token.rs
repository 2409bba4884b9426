//! The email-link tokens of verify-email and change-email (`email_token.rs`): any string is
//! refused or verified without a panic, and whatever is signed verifies back to the same claims.
//!
//! Input: `TOKEN`, and also `EMAIL\nUSER\nUPDATE_TO` (the last part optional) for the round trip.
#![no_main]

use latchkey_auth::fuzzing::{email_token_sign, email_token_verify};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing-secret-0123456789abcdefghijklmnop";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Arbitrary tokens: refused or verified, never a panic; and never verified under another
    // secret (the signature covers everything).
    let ours = email_token_verify(SECRET, text);
    if ours.is_some() {
        assert!(email_token_verify("another-secret-0123456789abcdefghijklm", text).is_none());
    }

    let mut parts = text.splitn(3, '\n');
    let (Some(email), Some(user)) = (parts.next(), parts.next()) else {
        return;
    };
    let update_to = parts.next();
    let token = email_token_sign(SECRET, email, user, update_to);
    let link = email_token_verify(SECRET, &token).expect("a token we signed verifies");
    assert_eq!(link.email, email.to_lowercase());
    assert_eq!(link.user_id, user);
    assert_eq!(link.update_to, update_to.map(str::to_lowercase));
    assert_eq!(
        link.kind,
        if update_to.is_some() {
            "change-email-confirmation"
        } else {
            "verify"
        }
    );
    // One flipped character of the signature: refused.
    let mut forged = token.into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ASCII");
    assert!(email_token_verify(SECRET, &forged).is_none());
});
