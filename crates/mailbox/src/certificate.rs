//! What the register certifies, for every other role to check against the
//! register's key instead of against a database row or a relay's word.
//!
//! - A [`SenderKeyCertificate`] binds a sender's signing key to the sender's
//!   organisation number and **registered name**. The relay carries it to the
//!   mailbox inside the sealed content; the mailbox checks it against the
//!   register keys it pins, and shows the certified name, never the name a
//!   delivery claims. A [`SenderKeyRevocation`] withdraws one from the moment
//!   the register signs it.
//! - An [`OperatorCertificate`] binds a mailbox operator's delivery address,
//!   sealing key and receipt key: the relay seals and checks receipts only
//!   with certified keys, so whoever can write the core database cannot have
//!   mail sealed to a key of their own or forge receipts.
//!
//! Each is signed (Ed25519, domain-separated as everywhere in kuvert) over
//! the RFC 8785 (JCS) form of a JSON array of its fields in a fixed order,
//! the same byte form as receipts (see `docs/architecture.md`).

use kuvert_crypto::signing::{PublicKey, Signature, SigningKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SENDER_KEY_CERTIFICATE_FORMAT: &str = "kuvert-sender-key-certificate-v1";
pub const SENDER_KEY_CERTIFICATE_DOMAIN: &[u8] = b"kuvert/v1/sender-key-certificate";
pub const SENDER_KEY_REVOCATION_FORMAT: &str = "kuvert-sender-key-revocation-v1";
pub const SENDER_KEY_REVOCATION_DOMAIN: &[u8] = b"kuvert/v1/sender-key-revocation";
pub const OPERATOR_CERTIFICATE_FORMAT: &str = "kuvert-operator-certificate-v1";
pub const OPERATOR_CERTIFICATE_DOMAIN: &[u8] = b"kuvert/v1/operator-certificate";

/// Why a certificate or revocation is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a {0} document")]
    Format(&'static str),
    #[error("signed by a register key that is not trusted here ({0})")]
    UnknownRegisterKey(String),
    #[error("the register's signature does not verify")]
    BadSignature,
    #[error("the certified key is malformed or its key id is not derived from it")]
    BadKey,
    #[error("the certificate is for something else: {0}")]
    Mismatch(&'static str),
}

/// The register keys a role trusts (its own trust anchor: configured, or
/// in one process the register's key file, never read from a database).
#[derive(Debug, Clone, Default)]
pub struct TrustedRegisters(Vec<PublicKey>);

impl TrustedRegisters {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self(keys)
    }

    fn key(&self, key_id: &str) -> Result<&PublicKey, CertificateError> {
        self.0
            .iter()
            .find(|k| k.key_id() == key_id)
            .ok_or_else(|| CertificateError::UnknownRegisterKey(key_id.to_owned()))
    }

    fn verify(
        &self,
        key_id: &str,
        domain: &[u8],
        bytes: &[u8],
        signature: &str,
    ) -> Result<(), CertificateError> {
        let key = self.key(key_id)?;
        let signature =
            Signature::from_base64(signature).map_err(|_| CertificateError::BadSignature)?;
        key.verify(domain, bytes, &signature)
            .map_err(|_| CertificateError::BadSignature)
    }
}

/// The RFC 8785 form of a JSON array of strings: JSON text without
/// whitespace, strings escaped as JSON.stringify does (what serde_json
/// writes for a list of strings).
fn jcs(values: &[&str]) -> Vec<u8> {
    serde_json::to_vec(values).unwrap_or_default()
}

/// The register's statement that `public_key` signs for the sender
/// `sender_id`, registered as `sender_name`, from `valid_from` until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderKeyCertificate {
    /// Always `kuvert-sender-key-certificate-v1`.
    pub format: String,
    /// The sender's canonical organisation number (12 digits).
    pub sender_id: String,
    /// The sender's name as registered by the platform operator: what a
    /// recipient is shown.
    pub sender_name: String,
    /// The key id (`ed25519:` + 16 hex digits of SHA-256 of the key).
    pub key_id: String,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// RFC 3339 UTC: when the register certified it.
    pub valid_from: String,
    /// The register key that signed, see `/register/v1/keys` (purpose
    /// `register_certificate`).
    pub register_key_id: String,
    /// Base64 Ed25519 signature over the signed bytes.
    pub signature: String,
}

impl SenderKeyCertificate {
    /// Issues and signs a certificate (the register does this when the
    /// platform operator adds a sender's key).
    pub fn issue(
        register: &SigningKey,
        sender_id: &str,
        sender_name: &str,
        public_key: &PublicKey,
        valid_from: &str,
    ) -> Self {
        let mut certificate = Self {
            format: SENDER_KEY_CERTIFICATE_FORMAT.to_owned(),
            sender_id: sender_id.to_owned(),
            sender_name: sender_name.to_owned(),
            key_id: public_key.key_id(),
            public_key: public_key.to_base64(),
            valid_from: valid_from.to_owned(),
            register_key_id: register.public_key().key_id(),
            signature: String::new(),
        };
        certificate.signature = register
            .sign(SENDER_KEY_CERTIFICATE_DOMAIN, &certificate.signed_bytes())
            .to_base64();
        certificate
    }

    /// `[format, sender_id, sender_name, key_id, public_key, valid_from,
    /// register_key_id]`, RFC 8785 form.
    pub fn signed_bytes(&self) -> Vec<u8> {
        jcs(&[
            &self.format,
            &self.sender_id,
            &self.sender_name,
            &self.key_id,
            &self.public_key,
            &self.valid_from,
            &self.register_key_id,
        ])
    }

    /// Checks the register's signature and that the key id is the key's;
    /// returns the certified key.
    pub fn verify(&self, registers: &TrustedRegisters) -> Result<PublicKey, CertificateError> {
        if self.format != SENDER_KEY_CERTIFICATE_FORMAT {
            return Err(CertificateError::Format(SENDER_KEY_CERTIFICATE_FORMAT));
        }
        registers.verify(
            &self.register_key_id,
            SENDER_KEY_CERTIFICATE_DOMAIN,
            &self.signed_bytes(),
            &self.signature,
        )?;
        let key = PublicKey::from_base64(&self.public_key).map_err(|_| CertificateError::BadKey)?;
        if key.key_id() != self.key_id {
            return Err(CertificateError::BadKey);
        }
        Ok(key)
    }
}

/// The register's statement that a sender key no longer signs, from
/// `revoked_at` on. Anything signed with it that has not reached a mailbox
/// by then is refused there (`sender_key_revoked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderKeyRevocation {
    /// Always `kuvert-sender-key-revocation-v1`.
    pub format: String,
    pub sender_id: String,
    pub key_id: String,
    /// RFC 3339 UTC.
    pub revoked_at: String,
    pub register_key_id: String,
    pub signature: String,
}

impl SenderKeyRevocation {
    pub fn issue(register: &SigningKey, sender_id: &str, key_id: &str, revoked_at: &str) -> Self {
        let mut revocation = Self {
            format: SENDER_KEY_REVOCATION_FORMAT.to_owned(),
            sender_id: sender_id.to_owned(),
            key_id: key_id.to_owned(),
            revoked_at: revoked_at.to_owned(),
            register_key_id: register.public_key().key_id(),
            signature: String::new(),
        };
        revocation.signature = register
            .sign(SENDER_KEY_REVOCATION_DOMAIN, &revocation.signed_bytes())
            .to_base64();
        revocation
    }

    /// `[format, sender_id, key_id, revoked_at, register_key_id]`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        jcs(&[
            &self.format,
            &self.sender_id,
            &self.key_id,
            &self.revoked_at,
            &self.register_key_id,
        ])
    }

    pub fn verify(&self, registers: &TrustedRegisters) -> Result<(), CertificateError> {
        if self.format != SENDER_KEY_REVOCATION_FORMAT {
            return Err(CertificateError::Format(SENDER_KEY_REVOCATION_FORMAT));
        }
        registers.verify(
            &self.register_key_id,
            SENDER_KEY_REVOCATION_DOMAIN,
            &self.signed_bytes(),
            &self.signature,
        )
    }
}

/// The register's statement of a mailbox operator's address and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorCertificate {
    /// Always `kuvert-operator-certificate-v1`.
    pub format: String,
    pub operator_id: String,
    pub name: String,
    /// Where relays deliver (`POST`).
    pub delivery_url: String,
    /// Standard base64 of the X25519 (HPKE) key content is sealed to.
    pub sealing_key: String,
    /// Standard base64 of the Ed25519 key receipts are signed with.
    pub receipt_key: String,
    /// RFC 3339 UTC: when the register certified these values.
    pub valid_from: String,
    pub register_key_id: String,
    pub signature: String,
}

/// The operator fields a certificate binds.
#[derive(Debug, Clone, Copy)]
pub struct OperatorFields<'a> {
    pub operator_id: &'a str,
    pub name: &'a str,
    pub delivery_url: &'a str,
    pub sealing_key: &'a str,
    pub receipt_key: &'a str,
}

impl<'a> From<&'a kuvert_store::register::Operator> for OperatorFields<'a> {
    fn from(operator: &'a kuvert_store::register::Operator) -> Self {
        Self {
            operator_id: operator.id.as_str(),
            name: &operator.name,
            delivery_url: &operator.delivery_url,
            sealing_key: &operator.sealing_key,
            receipt_key: &operator.receipt_key,
        }
    }
}

impl OperatorCertificate {
    pub fn issue(register: &SigningKey, fields: OperatorFields<'_>, valid_from: &str) -> Self {
        let mut certificate = Self {
            format: OPERATOR_CERTIFICATE_FORMAT.to_owned(),
            operator_id: fields.operator_id.to_owned(),
            name: fields.name.to_owned(),
            delivery_url: fields.delivery_url.to_owned(),
            sealing_key: fields.sealing_key.to_owned(),
            receipt_key: fields.receipt_key.to_owned(),
            valid_from: valid_from.to_owned(),
            register_key_id: register.public_key().key_id(),
            signature: String::new(),
        };
        certificate.signature = register
            .sign(OPERATOR_CERTIFICATE_DOMAIN, &certificate.signed_bytes())
            .to_base64();
        certificate
    }

    /// `[format, operator_id, name, delivery_url, sealing_key, receipt_key,
    /// valid_from, register_key_id]`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        jcs(&[
            &self.format,
            &self.operator_id,
            &self.name,
            &self.delivery_url,
            &self.sealing_key,
            &self.receipt_key,
            &self.valid_from,
            &self.register_key_id,
        ])
    }

    /// Checks the register's signature, and that the certificate states
    /// exactly `fields` (the row a relay is about to use).
    pub fn verify_for(
        &self,
        registers: &TrustedRegisters,
        fields: OperatorFields<'_>,
    ) -> Result<(), CertificateError> {
        if self.format != OPERATOR_CERTIFICATE_FORMAT {
            return Err(CertificateError::Format(OPERATOR_CERTIFICATE_FORMAT));
        }
        registers.verify(
            &self.register_key_id,
            OPERATOR_CERTIFICATE_DOMAIN,
            &self.signed_bytes(),
            &self.signature,
        )?;
        let checks = [
            (self.operator_id == fields.operator_id, "operator id"),
            (self.name == fields.name, "operator name"),
            (self.delivery_url == fields.delivery_url, "delivery address"),
            (self.sealing_key == fields.sealing_key, "sealing key"),
            (self.receipt_key == fields.receipt_key, "receipt key"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(CertificateError::Mismatch(what)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const AT: &str = "2026-12-01T12:00:00.000000Z";

    #[test]
    fn a_sender_key_certificate_verifies_only_unchanged_and_under_a_trusted_key() {
        let register = SigningKey::generate();
        let trusted = TrustedRegisters::new(vec![register.public_key()]);
        let sender_key = SigningKey::generate().public_key();
        let certificate =
            SenderKeyCertificate::issue(&register, "162120002411", "Kommunen", &sender_key, AT);
        assert_eq!(certificate.verify(&trusted).unwrap(), sender_key);

        let mut renamed = certificate.clone();
        renamed.sender_name = "Skatteverket".to_owned();
        assert_eq!(
            renamed.verify(&trusted),
            Err(CertificateError::BadSignature)
        );
        let mut other_key = certificate.clone();
        other_key.public_key = SigningKey::generate().public_key().to_base64();
        assert_eq!(
            other_key.verify(&trusted),
            Err(CertificateError::BadSignature)
        );
        // Signed by a key of someone else's choosing (a relay's, say).
        let forged = SenderKeyCertificate::issue(
            &SigningKey::generate(),
            "162120002411",
            "Kommunen",
            &sender_key,
            AT,
        );
        assert!(matches!(
            forged.verify(&trusted),
            Err(CertificateError::UnknownRegisterKey(_))
        ));
        // A key id that is not the key's, even if the register signed it.
        let mut wrong_id =
            SenderKeyCertificate::issue(&register, "162120002411", "Kommunen", &sender_key, AT);
        wrong_id.key_id = "ed25519:0000000000000000".to_owned();
        wrong_id.signature = register
            .sign(SENDER_KEY_CERTIFICATE_DOMAIN, &wrong_id.signed_bytes())
            .to_base64();
        assert_eq!(wrong_id.verify(&trusted), Err(CertificateError::BadKey));
    }

    #[test]
    fn signed_bytes_are_the_documented_array() {
        let register = SigningKey::from_bytes(&[3; 32]);
        let key = SigningKey::from_bytes(&[4; 32]).public_key();
        let certificate =
            SenderKeyCertificate::issue(&register, "162120002411", "Å \"x\"", &key, AT);
        let expected = format!(
            r#"["kuvert-sender-key-certificate-v1","162120002411","Å \"x\"","{}","{}","{AT}","{}"]"#,
            key.key_id(),
            key.to_base64(),
            register.public_key().key_id()
        );
        assert_eq!(
            String::from_utf8(certificate.signed_bytes()).unwrap(),
            expected
        );
    }

    #[test]
    fn an_operator_certificate_must_state_the_row_in_use() {
        let register = SigningKey::generate();
        let trusted = TrustedRegisters::new(vec![register.public_key()]);
        let fields = OperatorFields {
            operator_id: "kuvert-brevlada",
            name: "Kuvert brevlåda",
            delivery_url: "https://brevlada.example/mailbox/v1/deliveries",
            sealing_key: "c2VhbGluZw==",
            receipt_key: "cmVjZWlwdA==",
        };
        let certificate = OperatorCertificate::issue(&register, fields, AT);
        certificate.verify_for(&trusted, fields).unwrap();
        let swapped = OperatorFields {
            sealing_key: "YXR0YWNrZXI=",
            ..fields
        };
        assert_eq!(
            certificate.verify_for(&trusted, swapped),
            Err(CertificateError::Mismatch("sealing key"))
        );
        let moved = OperatorFields {
            delivery_url: "https://attacker.example/",
            ..fields
        };
        assert_eq!(
            certificate.verify_for(&trusted, moved),
            Err(CertificateError::Mismatch("delivery address"))
        );
    }

    #[test]
    fn a_revocation_verifies_only_unchanged() {
        let register = SigningKey::generate();
        let trusted = TrustedRegisters::new(vec![register.public_key()]);
        let revocation =
            SenderKeyRevocation::issue(&register, "162120002411", "ed25519:0123456789abcdef", AT);
        revocation.verify(&trusted).unwrap();
        let mut other = revocation.clone();
        other.key_id = "ed25519:fedcba9876543210".to_owned();
        assert_eq!(other.verify(&trusted), Err(CertificateError::BadSignature));
    }
}
