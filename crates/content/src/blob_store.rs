//! A content-addressed blob store on a local filesystem.
//!
//! Layout under the store's root:
//!
//! ```text
//! blobs/sha256/<hex>     committed blobs, named by the sha256 of their bytes, read-only
//! ingest/<unique>.tmp    blobs being written; never read by anyone but their writer
//! ```
//!
//! The store is split into three small capabilities, after containerd's content store
//! (`Provider`, `Ingester`, `Manager`), so that a caller that only reads (a registry server
//! serving blobs) or only writes (a pull) can be handed exactly that.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use types::{Algorithm, Digest};

use crate::error::{ContentError, IoContext, Result};
use crate::hash::HashingWriter;

/// Read access to committed blobs.
///
/// Terms: a *blob* is an immutable byte sequence named by its digest. Invariant: every blob a
/// `Provider` returns hashes to the digest it was asked for (the `Ingester` verified it on the
/// way in). A blob may disappear between `exists` and `open` if a `Manager` deletes it;
/// callers that must not race deletion hold their own lease (image GC is above this crate).
///
/// ```no_run
/// use content::{BlobStore, Provider};
/// # fn f(d: &types::Digest) -> content::Result<()> {
/// let store = BlobStore::open("/var/lib/berth/content")?;
/// if store.exists(d)? {
///     let mut file = store.open(d)?;
///     std::io::copy(&mut file, &mut std::io::stdout()).unwrap();
/// }
/// # Ok(()) }
/// ```
pub trait Provider {
    /// The reader of one blob.
    type Reader: Read;

    /// Opens a blob for reading. `BlobNotFound` if absent.
    fn open(&self, digest: &Digest) -> Result<Self::Reader>;

    /// Whether the blob is present.
    fn exists(&self, digest: &Digest) -> Result<bool>;

    /// The blob's size in bytes. `BlobNotFound` if absent.
    fn size(&self, digest: &Digest) -> Result<u64>;
}

/// Writes new blobs, verifying their digest.
///
/// Lifecycle of one `ingest`: the bytes stream into a private temporary file on the store's
/// filesystem while being hashed; the file is fsynced; if an expected digest was given and
/// differs, the temporary file is removed and `DigestMismatch` returned; otherwise it is
/// renamed into place atomically and the directory fsynced. Invariant: readers never see a
/// partial or unverified blob, and a failed ingest leaves nothing behind (a crash may leave a
/// temporary file, which [`BlobStore::open`] removes). Ingesting a blob that already exists
/// succeeds and leaves the existing one in place (the content is the same by definition).
pub trait Ingester {
    /// Streams `reader` to its end into the store. Returns the blob's digest and size.
    fn ingest(&self, reader: &mut dyn Read, expected: Option<&Digest>) -> Result<(Digest, u64)>;
}

/// Enumerates and deletes blobs.
///
/// Deleting a blob that readers hold open is safe: they keep reading the unlinked file.
pub trait Manager {
    /// Digests of all committed blobs, sorted.
    fn list(&self) -> Result<Vec<Digest>>;

    /// Removes a blob. `BlobNotFound` if absent.
    fn delete(&self, digest: &Digest) -> Result<()>;
}

/// A [`Provider`], [`Ingester`] and [`Manager`] over a directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
    counter: AtomicU64,
}

impl BlobStore {
    /// Opens (creating if needed) a store at `root`. Leftover temporary files of ingests that
    /// were interrupted by a crash are removed: call this once per process, before ingesting.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for dir in [&blobs, &ingest] {
            fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        }
        for entry in fs::read_dir(&ingest).ctx(|| format!("read {}", ingest.display()))? {
            let path = entry.ctx(|| format!("read {}", ingest.display()))?.path();
            // A leftover of a crashed ingest. One process owns a store (the daemon), so no
            // ingest can be under way while it opens the store.
            let _ = fs::remove_file(&path);
        }
        Ok(Self {
            root,
            blobs,
            ingest,
            counter: AtomicU64::new(0),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(ContentError::UnsupportedAlgorithm(
                digest.algorithm().to_string(),
            ));
        }
        Ok(self.blobs.join(digest.encoded()))
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.ingest
            .join(format!("{}-{}.tmp", std::process::id(), n))
    }
}

/// Removes a temporary file on drop unless disarmed.
struct TempFileGuard(Option<PathBuf>);

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// fsyncs a directory so a rename or unlink inside it is durable (rename(2) is atomic but not
/// durable until the directory is synced; see fsync(2) NOTES).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync {}", dir.display()))
}

impl Provider for BlobStore {
    type Reader = File;

    fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::BlobNotFound(digest.clone()),
            _ => ContentError::io(format!("open {}", path.display()), e),
        })
    }

    fn exists(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest)?;
        path.try_exists().ctx(|| format!("stat {}", path.display()))
    }

    fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::io(format!("stat {}", path.display()), e)),
        }
    }
}

impl Ingester for BlobStore {
    fn ingest(&self, reader: &mut dyn Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        if let Some(expected) = expected {
            // Refuse unsupported algorithms before reading anything.
            self.blob_path(expected)?;
        }
        let temp = self.temp_path();
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&temp)
            .ctx(|| format!("create {}", temp.display()))?;
        let mut guard = TempFileGuard(Some(temp.clone()));
        let mut writer = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, file));
        io::copy(reader, &mut writer).ctx(|| format!("write {}", temp.display()))?;
        let (digest, size, buffered) = writer.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| ContentError::io(format!("write {}", temp.display()), e.into_error()))?;
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        file.sync_all()
            .ctx(|| format!("fsync {}", temp.display()))?;
        drop(file);
        let dest = self.blob_path(&digest)?;
        fs::rename(&temp, &dest)
            .ctx(|| format!("rename {} to {}", temp.display(), dest.display()))?;
        guard.0 = None;
        sync_dir(&self.blobs)?;
        Ok((digest, size))
    }
}

impl Manager for BlobStore {
    fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).ctx(|| format!("read {}", self.blobs.display()))? {
            let entry = entry.ctx(|| format!("read {}", self.blobs.display()))?;
            // Names that are not digests are not blobs (nothing else writes here).
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::from_parts(Algorithm::Sha256, name)
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.blobs),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::io(format!("remove {}", path.display()), e)),
        }
    }
}

/// Writes all of `bytes` as a blob; a convenience over [`Ingester::ingest`].
pub fn ingest_bytes(store: &dyn Ingester, bytes: &[u8]) -> Result<Digest> {
    let mut r = bytes;
    store.ingest(&mut r, None).map(|(d, _)| d)
}

/// Reads a whole blob into memory (for small blobs: manifests, configs).
pub fn read_blob<P: Provider>(store: &P, digest: &Digest) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    store
        .open(digest)?
        .read_to_end(&mut out)
        .ctx(|| format!("read blob {digest}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256_digest;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("content")).unwrap();
        (dir, store)
    }

    fn ingest_count(store: &BlobStore) -> usize {
        fs::read_dir(&store.ingest).unwrap().count()
    }

    #[test]
    fn round_trip() {
        let (_dir, store) = store();
        let data = b"some blob content".repeat(10_000);
        let want = sha256_digest(&data);
        let (d, n) = store.ingest(&mut &data[..], Some(&want)).unwrap();
        assert_eq!((d.clone(), n), (want.clone(), data.len() as u64));
        assert!(store.exists(&d).unwrap());
        assert_eq!(store.size(&d).unwrap(), data.len() as u64);
        assert_eq!(read_blob(&store, &d).unwrap(), data);
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        // Blobs are read-only on disk.
        let mode = fs::metadata(store.blob_path(&d).unwrap()).unwrap();
        assert!(mode.permissions().readonly());
        // Ingesting again is fine and changes nothing.
        assert_eq!(ingest_bytes(&store, &data).unwrap(), d);
        assert_eq!(store.list().unwrap().len(), 1);
        store.delete(&d).unwrap();
        assert!(!store.exists(&d).unwrap());
        assert!(matches!(
            store.delete(&d),
            Err(ContentError::BlobNotFound(_))
        ));
        assert!(matches!(store.open(&d), Err(ContentError::BlobNotFound(_))));
        assert!(matches!(store.size(&d), Err(ContentError::BlobNotFound(_))));
        assert_eq!(ingest_count(&store), 0);
    }

    #[test]
    fn digest_mismatch_leaves_nothing() {
        let (_dir, store) = store();
        let wrong = sha256_digest(b"other");
        let err = store.ingest(&mut &b"data"[..], Some(&wrong)).unwrap_err();
        match &err {
            ContentError::DigestMismatch { expected, actual } => {
                assert_eq!(expected, &wrong);
                assert_eq!(actual, &sha256_digest(b"data"));
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(err.kind(), types::ErrorKind::InvalidArgument);
        assert!(store.list().unwrap().is_empty());
        assert!(!store.exists(&sha256_digest(b"data")).unwrap());
        assert_eq!(ingest_count(&store), 0);
    }

    #[test]
    fn failing_reader_leaves_nothing() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("network dropped"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let (_dir, store) = store();
        let err = store.ingest(&mut Failing(3), None).unwrap_err();
        assert!(err.to_string().contains("network dropped"), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(ingest_count(&store), 0);
    }

    #[test]
    fn rejects_sha512_and_ignores_junk() {
        let (_dir, store) = store();
        let d512: Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
        assert!(matches!(
            store.exists(&d512),
            Err(ContentError::UnsupportedAlgorithm(_))
        ));
        assert!(store.ingest(&mut &b"x"[..], Some(&d512)).is_err());
        fs::write(store.blobs.join("not-a-digest"), b"").unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn open_cleans_leftover_temp_files() {
        let (dir, store) = store();
        fs::write(store.ingest.join("123-0.tmp"), b"partial").unwrap();
        drop(store);
        let store = BlobStore::open(dir.path().join("content")).unwrap();
        assert_eq!(ingest_count(&store), 0);
    }
}
