//! Small metadata files (topic config, consumer offsets, shard count): written whole, to a
//! temporary file that is fsynced and then renamed over the old one, so a crash leaves either
//! the old or the new content, never a torn file.
//!
//! Plain blocking `std::fs` on purpose: these files are a few KiB, written on start-up, on admin
//! changes and every few seconds, never on the message data path.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically (tmp + fsync + rename + fsync of the directory).
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a file that may not exist yet.
pub fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_read_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.json");
        assert_eq!(read_optional(&path).unwrap(), None);
        write_file_atomically(&path, b"one").unwrap();
        write_file_atomically(&path, b"two").unwrap();
        assert_eq!(read_optional(&path).unwrap(), Some(b"two".to_vec()));
        assert!(!dir.path().join("sub").join("f.json.tmp").exists());
    }
}
