use std::path::PathBuf;

/// Errors from this crate. Deliberately coarse: e.g. `Decrypt` does not say
/// *why* authentication failed, so callers cannot leak an oracle.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid key")]
    InvalidKey,
    #[error("invalid signature")]
    InvalidSignature,
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    #[error("decryption failed")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "{path} is readable by group or others; a secret file must be private to its owner: run chmod 600 on it"
    )]
    InsecurePermissions { path: PathBuf },
}
