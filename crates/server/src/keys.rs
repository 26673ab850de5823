//! The installation's keys, generated on first start in `<data>/keys/`
//! (one file each, mode 0600, base64). In production these files are where a
//! secrets manager or HSM-backed mount puts them; nothing else changes.

use anyhow::Context as _;
use base64::Engine as _;
use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::Pseudonymizer;
use kuvert_crypto::keyfile::{load_or_create_secret, load_secret};
use kuvert_crypto::sealing::SealingPrivateKey;
use kuvert_crypto::signing::SigningKey;
use std::path::Path;

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
}

impl Keys {
    /// Loads the keys of `data_dir`, generating any that are missing (what
    /// `serve` does on first start).
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Self::read(&dir, load_or_create_secret)
    }

    /// Loads the keys of an existing installation and creates nothing: a
    /// command pointed at the wrong folder refuses instead of making up keys.
    pub fn load_existing(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("keys");
        anyhow::ensure!(
            dir.is_dir(),
            "{} holds no kuvert keys (is --data the installation's data folder?)",
            dir.display()
        );
        Self::read(&dir, load_secret)
    }

    fn read(
        dir: &Path,
        load: fn(&Path) -> Result<zeroize::Zeroizing<[u8; 32]>, kuvert_crypto::CryptoError>,
    ) -> anyhow::Result<Self> {
        let secret = |name: &str| {
            let path = dir.join(name);
            load(&path).with_context(|| format!("key file {}", path.display()))
        };
        let relay_credential = secret("relay-mailbox-credential.secret")?;
        Ok(Self {
            relay_seal: SigningKey::from_bytes(&*secret("relay-seal.ed25519")?),
            paper_kek: KeyEncryptionKey::from_bytes(&*secret("paper-kek.aes256")?),
            audit: SigningKey::from_bytes(&*secret("audit.ed25519")?),
            register: SigningKey::from_bytes(&*secret("register-certificate.ed25519")?),
            recipient_token: *secret("recipient-token.hmac")?,
            pseudonym: *secret("pseudonym.hmac")?,
            mailbox_sealing: SealingPrivateKey::from_bytes(&*secret("mailbox-sealing.x25519")?)
                .context("mailbox sealing key")?,
            mailbox_receipt: SigningKey::from_bytes(&*secret("mailbox-receipt.ed25519")?),
            mailbox_kek: KeyEncryptionKey::from_bytes(&*secret("mailbox-kek.aes256")?),
            relay_mailbox_credential: format!(
                "{}{}",
                kuvert_web::auth::RELAY_CREDENTIAL_PREFIX,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*relay_credential)
            ),
        })
    }

    pub fn pseudonymizer(&self) -> Pseudonymizer {
        Pseudonymizer::new(self.pseudonym)
    }
}
