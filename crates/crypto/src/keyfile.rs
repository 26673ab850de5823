//! Keys on disk in the data folder, created only by `kuvert keys init` (or
//! `serve --demo`), and other secret files read with the same checks.

use crate::{CryptoError, b64_decode_array, b64_encode, digest::random_bytes};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::Path;
use zeroize::Zeroizing;

/// Reads a 32-byte secret from `path` (base64 text + newline). If the file
/// does not exist, generates a random one, writes it atomically with mode 0600
/// and returns it. Refuses (`InsecurePermissions`) a file readable by group or
/// others: a leaked key file would let anyone sign receipts or read mail.
///
/// Atomic creation: write a temp file in the same directory, fsync, then
/// publish it. Publishing uses `hard_link`, which (unlike `rename`) fails if
/// the target exists, so two processes starting at once cannot silently end
/// up with different keys — the loser just loads the winner's key. If the
/// file system has no hard links we fall back to `rename`.
/// The parent directory must exist.
pub fn load_or_create_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    match load(path) {
        Err(CryptoError::Io(e)) if e.kind() == ErrorKind::NotFound => create(path),
        other => other,
    }
}

/// Reads an existing 32-byte secret (same checks as
/// [`load_or_create_secret`]); a missing file is an error, never created.
/// For commands that only read an installation's keys: pointed at the wrong
/// folder they must refuse, not make up new keys.
pub fn load_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    load(path)
}

/// Reads a secret text file (say the platform operator's admin token),
/// trimmed, with the same permission check as key files: a file readable by
/// group or others is refused (`InsecurePermissions`).
pub fn read_private_text(path: &Path) -> Result<Zeroizing<String>, CryptoError> {
    let text = read_private(path)?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

fn read_private(path: &Path) -> Result<Zeroizing<String>, CryptoError> {
    let file = File::open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            return Err(CryptoError::InsecurePermissions {
                path: path.to_path_buf(),
            });
        }
    }
    let mut text = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut &file, &mut text)?;
    Ok(text)
}

fn load(path: &Path) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let text = read_private(path)?;
    b64_decode_array::<32>(&text)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Malformed("key file must hold 32 bytes as base64"))
}

fn create(path: &Path) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let secret = Zeroizing::new(random_bytes::<32>());
    let mut text = Zeroizing::new(b64_encode(secret.as_slice()));
    text.push('\n');

    let name = path
        .file_name()
        .ok_or(CryptoError::Malformed("key path has no file name"))?;
    let suffix = crate::digest::random_token(6);
    let tmp = path.with_file_name(format!(".{}.{suffix}.tmp", name.to_string_lossy()));

    let result = write_and_publish(&tmp, path, text.as_bytes());
    let _ = fs::remove_file(&tmp); // no-op after rename; cleanup after link or error
    match result {
        Ok(()) => Ok(secret),
        // Someone else created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(e.into()),
    }
}

fn write_and_publish(tmp: &Path, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    match fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(e),
        Err(_) => fs::rename(tmp, path)?,
    }
    // Make the new directory entry durable too (best effort; not possible on
    // every platform).
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let a = load_or_create_secret(&path).unwrap();
        let b = load_or_create_secret(&path).unwrap();
        assert_eq!(*a, *b);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        // Only the key file is left behind, no temp files.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_world_readable_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        load_or_create_secret(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_secret(&path),
            Err(CryptoError::InsecurePermissions { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn private_text_refuses_group_or_world_readable_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        fs::write(&path, "kva_secret\n").unwrap();
        for mode in [0o644, 0o640, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                read_private_text(&path),
                Err(CryptoError::InsecurePermissions { .. })
            ));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private_text(&path).unwrap().as_str(), "kva_secret");
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(&path).unwrap().write_all(b"not a key\n").unwrap();
        assert!(matches!(
            load_or_create_secret(&path),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn missing_dir_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("k");
        assert!(matches!(
            load_or_create_secret(&path),
            Err(CryptoError::Io(_))
        ));
    }
}
