//! Provider credentials at rest: sealed with XChaCha20-Poly1305 under `DOCOBO_SECRET_KEY`.
//!
//! Each value gets a fresh random 24-byte nonce (large enough that random nonces never repeat in
//! practice), stored in front of the ciphertext. The guild and provider are bound in as associated
//! data, so a sealed row copied to another guild does not decrypt. A wrong key fails the
//! authentication tag: the caller gets an error, never garbage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;

/// Why a secret key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("DOCOBO_SECRET_KEY must be standard base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")]
    Malformed,
}

/// The cipher for stored credentials.
pub struct SecretBox(XChaCha20Poly1305);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// From the base64 text of `DOCOBO_SECRET_KEY`.
    pub fn from_base64(key: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(SecretBox(XChaCha20Poly1305::new(&key.into())))
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(&nonce, Payload { msg: plaintext, aad: context })
            .unwrap_or_else(|_| unreachable!("encryption fails only for inputs over 256 GiB"));
        [nonce.as_slice(), &sealed].concat()
    }

    /// `None` when the value was sealed under another key, for another context, or tampered with.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const OTHER: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = SecretBox::from_base64(KEY).expect("key");
        let sealed = key.seal(b"whsec_abc", b"900:polar");
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"), "plaintext visible");
        assert_eq!(key.open(&sealed, b"900:polar").as_deref(), Some(&b"whsec_abc"[..]));
        assert_eq!(key.open(&sealed, b"901:polar"), None);
        assert_eq!(SecretBox::from_base64(OTHER).expect("key").open(&sealed, b"900:polar"), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;
        assert_eq!(key.open(&tampered, b"900:polar"), None);
        assert_eq!(key.open(&sealed[..10], b"900:polar"), None);
        assert_ne!(key.seal(b"x", b"c"), key.seal(b"x", b"c"), "nonces must differ");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "not base64!", "AAECAwQ=", &format!("{KEY}AAAA")] {
            assert_eq!(SecretBox::from_base64(bad).err(), Some(KeyError::Malformed), "{bad:?}");
        }
    }
}
