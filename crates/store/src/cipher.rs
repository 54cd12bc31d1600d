//! Encryption at rest for integration secrets and CRM credentials: XChaCha20-Poly1305 with a
//! random 192-bit nonce per value (random nonces of that size never collide in practice), bound
//! to the row it belongs to through the associated data so a ciphertext cannot be moved to
//! another integration.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::StoreError;

/// The key that encrypts secrets. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(..)")
    }
}

/// A key that is not 32 bytes of base64.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the secret key must be 32 bytes, base64-encoded (generate one with `rollcall keygen`)")]
pub struct BadKey;

const NONCE_LEN: usize = 24;

impl SecretCipher {
    /// From a base64-encoded 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, BadKey> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| BadKey)?;
        let key = Key::try_from(bytes.as_slice()).map_err(|_| BadKey)?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// A fresh random key, base64-encoded.
    #[must_use]
    pub fn generate_key() -> String {
        let key: [u8; 32] = rand::random();
        STANDARD.encode(key)
    }

    /// Encrypts `plaintext` for the row `owner`; the result is base64 text.
    pub fn seal(&self, owner: &[u8], plaintext: &str) -> Result<String, StoreError> {
        let nonce = XNonce::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner,
                },
            )
            .map_err(|_| StoreError::corrupt("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `owner`.
    pub fn open(&self, owner: &[u8], sealed: &str) -> Result<String, StoreError> {
        let fail = || {
            StoreError::corrupt(
                "a stored secret cannot be decrypted (wrong ROLLCALL_SECRET_KEY, or tampered)",
            )
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| fail())?;
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: owner,
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_to_the_owner() {
        let cipher = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        let sealed = cipher.seal(b"integration-a", "whsec_abc").unwrap();
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(cipher.open(b"integration-a", &sealed).unwrap(), "whsec_abc");
        assert!(cipher.open(b"integration-b", &sealed).is_err());
        let other = SecretCipher::from_base64(&SecretCipher::generate_key()).unwrap();
        assert!(other.open(b"integration-a", &sealed).is_err());
    }

    #[test]
    fn refuses_short_keys() {
        assert!(SecretCipher::from_base64("c2hvcnQ=").is_err());
    }
}
