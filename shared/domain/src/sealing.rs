//! Secrets at rest (TOTP secrets, and later provider tokens): sealed with XChaCha20-Poly1305
//! under `DATA_ENCRYPTION_KEY`. A sealed value is `nonce (24 bytes) ‖ ciphertext ‖ tag`; the
//! random nonce is long enough that reuse never needs thinking about. Each value is bound to
//! a context (its owner and purpose) as associated data, so a sealed value copied to another
//! row does not open there.

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    XChaCha20Poly1305, XNonce,
};

use crate::error::{ConfigError, ServiceError, ServiceResult};

const NONCE_BYTES: usize = 24;

/// Seals and opens secrets with one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer from a standard base64 key of exactly 32 bytes (`openssl rand -base64 32`).
    pub fn from_base64(key: &str) -> Result<Self, ConfigError> {
        let bytes = STANDARD
            .decode(key.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| ConfigError::invalid("DATA_ENCRYPTION_KEY", "not 32 bytes in base64"))?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| ConfigError::invalid("DATA_ENCRYPTION_KEY", "unusable key"))?;
        Ok(Self { cipher })
    }

    pub fn seal(&self, context: &str, secret: &[u8]) -> ServiceResult<Vec<u8>> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: secret,
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| ServiceError::internal("sealing failed"))?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// The secret, if `sealed` was sealed by this key for this context. Anything else (a
    /// rotated key, a tampered or moved value) is an internal error: stored data is wrong.
    pub fn open(&self, context: &str, sealed: &[u8]) -> ServiceResult<Vec<u8>> {
        let failed = || ServiceError::internal("a sealed value did not open");
        if sealed.len() < NONCE_BYTES {
            return Err(failed());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| failed())?;
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ZGV2LW9ubHktZGF0YS1lbmNyeXB0aW9uLWtleS0zMmI=";

    #[test]
    fn opens_only_what_it_sealed_for_the_same_context() {
        let sealer = Sealer::from_base64(KEY).unwrap();
        let sealed = sealer.seal("mfa:alice", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "not in clear");
        assert_eq!(sealer.open("mfa:alice", &sealed).unwrap(), b"secret");
        assert!(sealer.open("mfa:bob", &sealed).is_err(), "bound to context");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("mfa:alice", &tampered).is_err());
        assert!(sealer.open("mfa:alice", &sealed[..10]).is_err());
        let other = Sealer::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open("mfa:alice", &sealed).is_err(), "another key");
        assert_ne!(
            sealer.seal("mfa:alice", b"secret").unwrap(),
            sealed,
            "fresh nonce"
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Sealer::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(Sealer::from_base64("not base64!").is_err());
        assert!(Sealer::from_base64("").is_err());
    }
}
