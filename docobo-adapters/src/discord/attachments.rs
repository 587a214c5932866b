//! The relay's attachment store: files of source messages, downloaded once at intake (while
//! Discord's signed URL is fresh; it expires after about a day) and kept content-addressed under
//! `DOCOBO_DATA_DIR/attachments/ab/abcdef…` (the SHA-256 of the bytes), so a file relayed to
//! many targets, or posted twice, is stored once.
//!
//! Downloads use our own client, not serenity's `Attachment::download` (a new client per call,
//! no timeout, no status check): the status is checked, the whole download has a timeout, and
//! the size is capped both by what Discord said and by what actually arrives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The largest file downloaded: Discord's largest upload limit (a level-3 boosted server is
/// 100 MiB) is not worth holding; targets without boosts take 10 MiB, and what does not fit a
/// target is linked instead.
pub const MAX_ATTACHMENT: u64 = 25 * 1024 * 1024;
/// The longest one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Files by content, under one directory.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    dir: PathBuf,
    client: reqwest::Client,
}

impl AttachmentStore {
    /// The store under `data_dir` (`DOCOBO_DATA_DIR`); the directory is created on first write.
    pub fn new(data_dir: &Path) -> Self {
        let client = reqwest::Client::builder()
            .timeout(DOWNLOAD_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        AttachmentStore { dir: data_dir.join("attachments"), client }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| self.dir.join(&digest[..2]).join(digest))
    }

    /// Downloads `url` (announced as `size` bytes) and stores it; its SHA-256 in hex, or why not.
    pub async fn fetch(&self, url: &str, size: u64) -> Result<String, String> {
        if size > MAX_ATTACHMENT {
            return Err(format!("{size} bytes is over the {MAX_ATTACHMENT}-byte cap"));
        }
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
            if (bytes.len() + chunk.len()) as u64 > MAX_ATTACHMENT {
                return Err(format!("more than the {MAX_ATTACHMENT}-byte cap arrived"));
            }
            bytes.extend_from_slice(&chunk);
        }
        self.put(&bytes).await.map_err(|e| format!("storing it: {e}"))
    }

    /// Stores `bytes`; their SHA-256 in hex.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let digest: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let path = self.path(&digest).ok_or_else(|| std::io::Error::other("bad digest"))?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(digest);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Written aside then renamed, so a crash never leaves a half file under the name.
        let partial = path.with_extension(format!("part-{}", std::process::id()));
        tokio::fs::write(&partial, bytes).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(digest)
    }

    /// The file stored under `digest`, opened for reading, and its length: for serving it
    /// without holding it in memory.
    pub async fn open(&self, digest: &str) -> std::io::Result<(tokio::fs::File, u64)> {
        let path = self.path(digest).ok_or_else(|| std::io::Error::other("not a stored attachment"))?;
        let file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        Ok((file, len))
    }

    /// The bytes stored under `digest`.
    pub async fn read(&self, digest: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path(digest).ok_or_else(|| std::io::Error::other("not a stored attachment"))?;
        tokio::fs::read(path).await
    }
}
