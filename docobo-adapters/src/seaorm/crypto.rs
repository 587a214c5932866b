//! Provider credentials at rest: sealed with XChaCha20-Poly1305 under `DOCOBO_SECRET_KEY`.
//!
//! Each value gets a fresh random 24-byte nonce (large enough that random nonces never repeat in
//! practice), stored in front of the ciphertext. The guild and provider are bound in as associated
//! data, so a sealed row copied to another guild does not decrypt. A wrong key fails the
//! authentication tag: the caller gets an error, never garbage.
//!
//! Rotating the key: a box may also hold the previous key (`DOCOBO_SECRET_KEY_OLD`). Values
//! open under either key (the tag tells which one sealed them) and are always sealed under the
//! current one, so `docobo secrets rotate` re-seals every row and the old key can then go.

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
    #[error("DOCOBO_SECRET_KEY_OLD is set without DOCOBO_SECRET_KEY: set the new key too")]
    OldWithoutNew,
}

/// The cipher for stored credentials: the current key, and the previous one while rotating.
pub struct SecretBox(XChaCha20Poly1305, Option<XChaCha20Poly1305>);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// From the base64 text of `DOCOBO_SECRET_KEY`.
    pub fn from_base64(key: &str) -> Result<Self, KeyError> {
        Ok(SecretBox(cipher(key)?, None))
    }

    /// Also opens values sealed under `previous` (base64, like the current key).
    pub fn with_previous(self, previous: &str) -> Result<Self, KeyError> {
        Ok(SecretBox(self.0, Some(cipher(previous)?)))
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
        let payload = || Payload { msg: ciphertext, aad: context };
        let nonce = XNonce::from_slice(nonce);
        self.0.decrypt(nonce, payload()).ok().or_else(|| self.1.as_ref()?.decrypt(nonce, payload()).ok())
    }
}

fn cipher(key: &str) -> Result<XChaCha20Poly1305, KeyError> {
    let bytes = STANDARD.decode(key.trim()).map_err(|_| KeyError::Malformed)?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
    Ok(XChaCha20Poly1305::new(&key.into()))
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
    fn l9_while_rotating_both_keys_open_and_the_new_one_seals() {
        let old = SecretBox::from_base64(OTHER).expect("key");
        let sealed_old = old.seal(b"whsec_abc", b"900:polar");
        let rotating = SecretBox::from_base64(KEY).expect("key").with_previous(OTHER).expect("old key");
        assert_eq!(rotating.open(&sealed_old, b"900:polar").as_deref(), Some(&b"whsec_abc"[..]));
        let resealed = rotating.seal(b"whsec_abc", b"900:polar");
        let new_only = SecretBox::from_base64(KEY).expect("key");
        assert_eq!(new_only.open(&resealed, b"900:polar").as_deref(), Some(&b"whsec_abc"[..]));
        assert_eq!(old.open(&resealed, b"900:polar"), None, "the old key no longer opens it");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "not base64!", "AAECAwQ=", &format!("{KEY}AAAA")] {
            assert_eq!(SecretBox::from_base64(bad).err(), Some(KeyError::Malformed), "{bad:?}");
        }
    }
}
