//! Replacing a file at once: write a temporary file in the same folder, then rename it over the
//! target. A reader sees the old or the new content, never a mix, and a symbolic link at the
//! target is replaced, never followed (rename acts on the name, not on what it points to).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Writes `content` to `path` atomically, with mode 0644 (the temporary file starts as 0600).
pub fn write(path: &Path, content: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(content))
}

/// Like [`write`], with the content streamed by `fill` (a large report is never held in memory
/// twice).
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".labbook-tmp-")
        .tempfile_in(dir)?;
    {
        let mut buffered = std::io::BufWriter::new(file.as_file_mut());
        fill(&mut buffered)?;
        buffered.flush()?;
    }
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_at_the_target_are_replaced_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("accepted");
        std::fs::write(&target, "accepted\n").expect("write");
        let link = tmp.path().join("pending");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write(&link, b"pending\n").expect("write through atomic");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "accepted\n"
        );
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "pending\n");
        assert!(!std::fs::symlink_metadata(&link).expect("meta").is_symlink());
    }
}
