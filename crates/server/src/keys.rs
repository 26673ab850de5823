//! The installation's keys in `<data>/keys/` (one file each, mode 0600,
//! base64). In production these files are where a secrets manager or
//! HSM-backed mount puts them; nothing else changes.
//!
//! Keys never appear silently: only [`init`] (`kuvert keys init`, or `serve
//! --demo`) creates a missing key file. Every other path loads what exists
//! and refuses, naming the file, when one is missing: a secrets mount that is
//! not ready yet must stop the start, not encrypt new mail under a fresh key
//! and make the stored mail unreadable.

use anyhow::Context as _;
use base64::Engine as _;
use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::{Pseudonymizer, secret_key_id};
use kuvert_crypto::jws::JwsSigningKey;
use kuvert_crypto::keyfile::{load_or_create_secret, load_secret};
use kuvert_crypto::sealing::SealingPrivateKey;
use kuvert_crypto::signing::SigningKey;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What a key file holds, which decides how its key id is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A signing key; its id names the public half (`ed25519:…`).
    Ed25519,
    /// An HPKE key; its id names the public half (`x25519:…`).
    X25519,
    /// A key-encryption key (`aes256:…`, keyed digest: no public half).
    Aes256,
    /// An HMAC key (`hmac-sha256:…`, keyed digest).
    HmacSha256,
    /// A shared credential (`secret:…`, keyed digest).
    Credential,
}

/// One key file of an installation.
#[derive(Debug, Clone, Copy)]
pub struct KeyFile {
    pub name: &'static str,
    pub purpose: &'static str,
    pub kind: KeyKind,
}

/// Every key file of an installation. A new key is a row here and a field in
/// [`Keys`]; `keys init`, `keys list` and the start-up check follow.
pub const KEY_FILES: &[KeyFile] = &[
    KeyFile {
        name: "relay-seal.ed25519",
        purpose: "relay: signs seals",
        kind: KeyKind::Ed25519,
    },
    KeyFile {
        name: "audit.ed25519",
        purpose: "signs audit checkpoints",
        kind: KeyKind::Ed25519,
    },
    KeyFile {
        name: "register-certificate.ed25519",
        purpose: "register: certifies sender keys and mailbox operators (the anchor others pin)",
        kind: KeyKind::Ed25519,
    },
    KeyFile {
        name: "paper-kek.aes256",
        purpose: "relay: encrypts paper mail waiting for print",
        kind: KeyKind::Aes256,
    },
    KeyFile {
        name: "recipient-token.hmac",
        purpose: "signs recipient tokens",
        kind: KeyKind::HmacSha256,
    },
    KeyFile {
        name: "pseudonym.hmac",
        purpose: "keys identity-number pseudonyms in the audit log",
        kind: KeyKind::HmacSha256,
    },
    KeyFile {
        name: "mailbox-sealing.x25519",
        purpose: "mailbox: content is sealed to it",
        kind: KeyKind::X25519,
    },
    KeyFile {
        name: "mailbox-receipt.ed25519",
        purpose: "mailbox: signs receipts",
        kind: KeyKind::Ed25519,
    },
    KeyFile {
        name: "mailbox-kek.aes256",
        purpose: "mailbox: wraps the data keys of stored mail",
        kind: KeyKind::Aes256,
    },
    KeyFile {
        name: "web-sender-kek.aes256",
        purpose: "sender pages: encrypts the web sending keys the server signs with (decision 0020)",
        kind: KeyKind::Aes256,
    },
    KeyFile {
        name: "oidc-client.ed25519",
        purpose: "e-ID login: signs kuvert's client assertions (private_key_jwt), published at /login/jwks",
        kind: KeyKind::Ed25519,
    },
    KeyFile {
        name: "relay-mailbox-credential.secret",
        purpose: "the relay's credential at the built-in mailbox",
        kind: KeyKind::Credential,
    },
];

/// The folder of the key files.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// The id of a key file's key: the public key's id for Ed25519 and X25519,
/// a keyed digest for the symmetric ones.
pub fn key_id(kind: KeyKind, secret: &[u8; 32]) -> anyhow::Result<String> {
    Ok(match kind {
        KeyKind::Ed25519 => SigningKey::from_bytes(secret).public_key().key_id(),
        KeyKind::X25519 => SealingPrivateKey::from_bytes(secret)
            .context("not an X25519 key")?
            .public_key()
            .key_id(),
        KeyKind::Aes256 => secret_key_id("aes256", secret),
        KeyKind::HmacSha256 => secret_key_id("hmac-sha256", secret),
        KeyKind::Credential => secret_key_id("secret", secret),
    })
}

/// A key file as `keys init` or `keys list` reports it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileReport {
    pub file: &'static str,
    pub purpose: &'static str,
    /// `None` when the file is missing.
    pub key_id: Option<String>,
}

/// Creates the key files of `data_dir` that are missing (mode 0600, written
/// atomically) and changes none that exists. Returns the files created, with
/// their key ids. An existing file that cannot be read (wrong mode, not a
/// key) is an error: nothing is created in its place.
pub fn init(data_dir: &Path) -> anyhow::Result<Vec<KeyFileReport>> {
    let dir = key_dir(data_dir);
    create_private_dir(&dir)?;
    let mut missing = Vec::new();
    for file in KEY_FILES {
        let path = dir.join(file.name);
        match load_secret(&path) {
            Ok(_) => {}
            Err(kuvert_crypto::CryptoError::Io(e)) if e.kind() == ErrorKind::NotFound => {
                missing.push(file)
            }
            Err(e) => return Err(e).with_context(|| format!("key file {}", path.display())),
        }
    }
    let mut created = Vec::new();
    for file in missing {
        let path = dir.join(file.name);
        // Atomic and race-safe: two inits at once end with one key.
        let secret = load_or_create_secret(&path)
            .with_context(|| format!("creating key file {}", path.display()))?;
        created.push(KeyFileReport {
            file: file.name,
            purpose: file.purpose,
            key_id: Some(key_id(file.kind, &secret)?),
        });
    }
    Ok(created)
}

/// Every key file of `data_dir` with its key id (`None`: missing). Creates
/// nothing.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<KeyFileReport>> {
    let dir = key_dir(data_dir);
    KEY_FILES
        .iter()
        .map(|file| {
            let path = dir.join(file.name);
            let key_id = match load_secret(&path) {
                Ok(secret) => Some(key_id(file.kind, &secret)?),
                Err(kuvert_crypto::CryptoError::Io(e)) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("key file {}", path.display())),
            };
            Ok(KeyFileReport {
                file: file.name,
                purpose: file.purpose,
                key_id,
            })
        })
        .collect()
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

pub struct Keys {
    /// The relay signs seals with it; mailbox operators trust its public half.
    pub relay_seal: SigningKey,
    /// Encrypts paper-mail content waiting for the print service.
    pub paper_kek: KeyEncryptionKey,
    /// Signs audit checkpoints.
    pub audit: SigningKey,
    /// The register certifies sender keys and mailbox operators with it;
    /// relay and mailbox trust its public half (in one process; separate
    /// roles pin it by configuration).
    pub register: SigningKey,
    /// Signs recipient tokens (HMAC).
    pub recipient_token: [u8; 32],
    /// Keys pseudonyms of identity numbers in the audit log.
    pub pseudonym: [u8; 32],
    /// The built-in mailbox operator's HPKE key (content is sealed to it).
    pub mailbox_sealing: SealingPrivateKey,
    /// The built-in mailbox operator's receipt-signing key.
    pub mailbox_receipt: SigningKey,
    /// The built-in mailbox's key-encryption key for content at rest.
    pub mailbox_kek: KeyEncryptionKey,
    /// The relay's credential at the built-in mailbox (`kvm_…`).
    pub relay_mailbox_credential: String,
    /// Encrypts the private halves of the web sending keys (decision 0020).
    pub web_sender_kek: KeyEncryptionKey,
    /// Signs the e-ID login's client assertions (`private_key_jwt`).
    pub oidc_client: std::sync::Arc<JwsSigningKey>,
}

impl Keys {
    /// Loads the keys of an existing installation and creates nothing. A
    /// missing key file is refused with its name and the command that
    /// creates it; a command pointed at the wrong folder refuses instead of
    /// making up keys.
    pub fn load_existing(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = key_dir(data_dir);
        anyhow::ensure!(
            dir.is_dir(),
            "{} holds no kuvert keys (is --data the installation's data folder?): missing {}; \
             for a new installation run `kuvert keys init --data {}`",
            dir.display(),
            KEY_FILES
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", "),
            data_dir.display()
        );
        let mut secrets = HashMap::new();
        let mut missing = Vec::new();
        for file in KEY_FILES {
            let path = dir.join(file.name);
            match load_secret(&path) {
                Ok(secret) => {
                    secrets.insert(file.name, secret);
                }
                Err(kuvert_crypto::CryptoError::Io(e)) if e.kind() == ErrorKind::NotFound => {
                    missing.push(path.display().to_string())
                }
                Err(e) => return Err(e).with_context(|| format!("key file {}", path.display())),
            }
        }
        anyhow::ensure!(
            missing.is_empty(),
            "missing key file{}: {}. kuvert creates no key on its own: for a new installation \
             run `kuvert keys init --data {}`; for an existing one, make the keys folder (the \
             secrets mount) available and start again",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            data_dir.display()
        );
        Self::from_secrets(&secrets)
    }

    fn from_secrets(secrets: &HashMap<&str, Zeroizing<[u8; 32]>>) -> anyhow::Result<Self> {
        let secret = |name: &str| -> anyhow::Result<&[u8; 32]> {
            secrets
                .get(name)
                .map(|s| &**s)
                .with_context(|| format!("key file {name} is not in KEY_FILES"))
        };
        let relay_credential = secret("relay-mailbox-credential.secret")?;
        Ok(Self {
            relay_seal: SigningKey::from_bytes(secret("relay-seal.ed25519")?),
            paper_kek: KeyEncryptionKey::from_bytes(secret("paper-kek.aes256")?),
            audit: SigningKey::from_bytes(secret("audit.ed25519")?),
            register: SigningKey::from_bytes(secret("register-certificate.ed25519")?),
            recipient_token: *secret("recipient-token.hmac")?,
            pseudonym: *secret("pseudonym.hmac")?,
            mailbox_sealing: SealingPrivateKey::from_bytes(secret("mailbox-sealing.x25519")?)
                .context("mailbox sealing key")?,
            mailbox_receipt: SigningKey::from_bytes(secret("mailbox-receipt.ed25519")?),
            mailbox_kek: KeyEncryptionKey::from_bytes(secret("mailbox-kek.aes256")?),
            web_sender_kek: KeyEncryptionKey::from_bytes(secret("web-sender-kek.aes256")?),
            oidc_client: std::sync::Arc::new(JwsSigningKey::from_bytes(secret(
                "oidc-client.ed25519",
            )?)),
            relay_mailbox_credential: format!(
                "{}{}",
                kuvert_web::auth::RELAY_CREDENTIAL_PREFIX,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(relay_credential)
            ),
        })
    }

    pub fn pseudonymizer(&self) -> Pseudonymizer {
        Pseudonymizer::new(self.pseudonym)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_what_is_missing_and_changes_nothing_that_exists() {
        let data = tempfile::tempdir().unwrap();
        let first = init(data.path()).unwrap();
        assert_eq!(first.len(), KEY_FILES.len());
        assert!(first.iter().all(|r| r.key_id.is_some()));
        let audit = std::fs::read(key_dir(data.path()).join("audit.ed25519")).unwrap();

        std::fs::remove_file(key_dir(data.path()).join("mailbox-kek.aes256")).unwrap();
        let second = init(data.path()).unwrap();
        assert_eq!(
            second.iter().map(|r| r.file).collect::<Vec<_>>(),
            ["mailbox-kek.aes256"]
        );
        assert!(second[0].key_id.as_deref().unwrap().starts_with("aes256:"));
        assert_eq!(
            std::fs::read(key_dir(data.path()).join("audit.ed25519")).unwrap(),
            audit
        );
        assert!(init(data.path()).unwrap().is_empty());
    }

    #[test]
    fn load_existing_names_every_missing_file_and_creates_none() {
        let data = tempfile::tempdir().unwrap();
        init(data.path()).unwrap();
        for gone in ["audit.ed25519", "mailbox-kek.aes256"] {
            std::fs::remove_file(key_dir(data.path()).join(gone)).unwrap();
        }
        let error = format!("{:#}", Keys::load_existing(data.path()).err().unwrap());
        assert!(error.contains("audit.ed25519"), "{error}");
        assert!(error.contains("mailbox-kek.aes256"), "{error}");
        assert!(error.contains("kuvert keys init"), "{error}");
        assert!(!key_dir(data.path()).join("audit.ed25519").exists());
    }

    #[test]
    fn list_names_each_key_by_id_and_reports_missing_ones() {
        let data = tempfile::tempdir().unwrap();
        assert!(
            list(data.path())
                .unwrap()
                .iter()
                .all(|r| r.key_id.is_none())
        );
        assert!(
            !key_dir(data.path()).exists(),
            "list created the keys folder"
        );
        let created = init(data.path()).unwrap();
        let listed = list(data.path()).unwrap();
        assert_eq!(listed, created);
        let keys = Keys::load_existing(data.path()).unwrap();
        let audit = listed.iter().find(|r| r.file == "audit.ed25519").unwrap();
        assert_eq!(
            audit.key_id.as_deref(),
            Some(keys.audit.public_key().key_id().as_str())
        );
        let token = listed
            .iter()
            .find(|r| r.file == "recipient-token.hmac")
            .unwrap();
        assert_eq!(
            token.key_id.as_deref(),
            Some(secret_key_id("hmac-sha256", &keys.recipient_token).as_str())
        );
    }
}
