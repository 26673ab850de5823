//! JWS compact signatures with Ed25519 (`alg: EdDSA`, RFC 8037), for the
//! one JWT kuvert makes itself: the client assertion of the e-ID login's
//! `private_key_jwt` (RFC 7523). kuvert never *verifies* JWTs here; the
//! ID tokens it receives are checked by the `openidconnect` crate.
//!
//! Unlike [`crate::signing`], there is no domain separation: a JWS signs
//! `base64url(header) . base64url(claims)` as the standard says, so the
//! provider can check it. That is safe because this key is its own key file
//! and signs nothing else.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An Ed25519 key that signs JWS. `Debug` shows only its `kid`.
pub struct JwsSigningKey {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

impl JwsSigningKey {
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(secret);
        let kid = thumbprint(&b64url(key.verifying_key().as_bytes()));
        Self { key, kid }
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The key's `kid`: its RFC 7638 JWK thumbprint, so a provider holding
    /// the JWKS can name it without kuvert choosing ids.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK's members: `kty`, `crv`, `x`, `kid`, `alg`,
    /// `use` (name, value), in that order.
    pub fn public_jwk(&self) -> [(&'static str, String); 6] {
        [
            ("kty", "OKP".to_owned()),
            ("crv", "Ed25519".to_owned()),
            ("x", b64url(self.key.verifying_key().as_bytes())),
            ("kid", self.kid.clone()),
            ("alg", "EdDSA".to_owned()),
            ("use", "sig".to_owned()),
        ]
    }

    /// `header` and `claims` are JSON texts; the answer is the compact JWS
    /// `header.claims.signature`, each part base64url without padding.
    pub fn sign_compact(&self, header: &str, claims: &str) -> String {
        use ed25519_dalek::Signer as _;
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(claims.as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64url(&signature.to_bytes()))
    }
}

impl std::fmt::Debug for JwsSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwsSigningKey({})", self.kid)
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    b64url(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A: its key, its JWS, its thumbprint.
    #[test]
    fn signs_and_names_as_rfc_8037_says() {
        let secret: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap()
            .try_into()
            .unwrap();
        let key = JwsSigningKey::from_bytes(&secret);
        assert_eq!(
            key.public_jwk()[2].1,
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        // A.3: the thumbprint of that key.
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        // A.4: Ed25519 is deterministic, so the same input gives RFC's JWS.
        assert_eq!(
            key.sign_compact(r#"{"alg":"EdDSA"}"#, "Example of Ed25519 signing"),
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
             hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        assert!(!format!("{key:?}").contains(&key.public_jwk()[2].1));
    }
}
