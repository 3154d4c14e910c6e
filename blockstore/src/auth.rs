//! HMAC-SHA256 challenge-response over a shared secret (the idea of `spark.authenticate`).
//!
//! The server sends a fresh 32-byte nonce; the client answers with its own nonce and
//! `HMAC(secret, CLIENT_LABEL || server_nonce || client_nonce)`; the server checks it in
//! constant time and proves itself with `HMAC(secret, SERVER_LABEL || client_nonce ||
//! server_nonce)`. The secret never crosses the wire, fresh nonces stop replays, and each side
//! learns that the other knows the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const CLIENT_LABEL: &[u8] = b"tidemark-blockstore client proof v1";
const SERVER_LABEL: &[u8] = b"tidemark-blockstore server proof v1";

/// Which side a proof comes from.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Client,
    Server,
}

fn keyed(secret: &[u8], side: Side, first: &[u8; 32], second: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(match side {
        Side::Client => CLIENT_LABEL,
        Side::Server => SERVER_LABEL,
    });
    mac.update(first);
    mac.update(second);
    mac
}

/// The proof `side` sends: client proofs bind (server nonce, client nonce), server proofs the
/// reverse.
pub(crate) fn prove(secret: &[u8], side: Side, first: &[u8; 32], second: &[u8; 32]) -> [u8; 32] {
    keyed(secret, side, first, second)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a proof in constant time.
pub(crate) fn verify(
    secret: &[u8],
    side: Side,
    first: &[u8; 32],
    second: &[u8; 32],
    proof: &[u8; 32],
) -> bool {
    keyed(secret, side, first, second)
        .verify_slice(proof)
        .is_ok()
}

/// A fresh random nonce.
pub(crate) fn nonce() -> [u8; 32] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_secret_side_and_nonces() {
        let (a, b) = (nonce(), nonce());
        let p = prove(b"s3cret", Side::Client, &a, &b);
        assert!(verify(b"s3cret", Side::Client, &a, &b, &p));
        assert!(!verify(b"other", Side::Client, &a, &b, &p));
        assert!(!verify(b"s3cret", Side::Server, &a, &b, &p));
        assert!(!verify(b"s3cret", Side::Client, &b, &a, &p));
    }
}
