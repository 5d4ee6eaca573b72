//! The optional on-disk bytecode cache: one file per module, loaded only when its keyed hash verifies.
//!
//! # Trust model
//!
//! QuickJS does not validate bytecode: reading crafted bytecode is memory
//! corruption. So a cache file is only believed when it carries a MAC (keyed
//! BLAKE3 over every byte before it) under the cache directory's secret key:
//!
//! - The key is 32 bytes from the OS's random source, in `knit-cache.key` in
//!   the cache directory, created with mode 0600 (written to a temporary file,
//!   then hard-linked into place so two processes never see half a key). It is
//!   used only if it is a regular file (not a symlink, opened with
//!   `O_NOFOLLOW`), owned by this process's effective uid, with no permission
//!   bits for group or others, and exactly 32 bytes long. Otherwise the cache is
//!   off for this pool (a warning says why): nothing is read, and the key is
//!   never replaced, since another process of ours may be using it.
//! - So only a process that can read the key can write a file that loads: the
//!   same user, or root. Those can already change this program or trace it;
//!   the cache gives them nothing new. Another user who can write to the
//!   directory can delete or replace cache files, or plant a key file of their
//!   own; that costs a compile (or turns the cache off), never a load.
//! - The MAC covers the header too: the format version, the engine version
//!   (quickjs-ng's own version string, the target, and knit's version), the
//!   module's name, the hash of its name, source and compile options, and its
//!   import specifiers. A file that does not match what is being compiled now is
//!   stale: ignored and rewritten. So are files with a bad magic, a bad MAC,
//!   or a wrong length (truncated, or bytes flipped).
//! - Not covered: secrecy (bytecode reveals the source; files are 0600, but the
//!   directory's own permissions are the application's), and a key that leaked.
//!
//! Writes go to a temporary file (0600) that is renamed over the entry, so a
//! reader sees a whole old file or a whole new one. An unusable directory (not
//! writable, not creatable, full) is never an error: the module is compiled
//! from source and a `tracing` warning says why.
//!
//! # File format (little endian)
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `KNITQJSC` |
//! | 4 | format version (1) |
//! | 32 | source hash: BLAKE3 of the name, the compile options and the source |
//! | 2 + n | engine version: length, UTF-8 |
//! | 2 + n | module name: length, UTF-8 |
//! | 4, then 4 + n each | import specifiers: count, then length and UTF-8 of each |
//! | 8 + n | bytecode: length, bytes (QuickJS `JS_WriteObject` output) |
//! | 32 | MAC: keyed BLAKE3 of every byte above, under the directory's key |

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The key file's name inside the cache directory.
pub(crate) const KEY_FILE: &str = "knit-cache.key";
const MAGIC: &[u8; 8] = b"KNITQJSC";
const FORMAT_VERSION: u32 = 1;
const MAC_LEN: usize = 32;
/// No cache file is read past this size (a module's bytecode is far smaller).
const MAX_FILE_LEN: u64 = 256 << 20;

/// What a verified cache file holds.
#[derive(Debug)]
pub(crate) struct CacheEntry {
    /// The module's bytecode, as this engine wrote it.
    pub(crate) bytecode: Vec<u8>,
    /// The module's import specifiers, as written in its source.
    pub(crate) specifiers: Vec<String>,
}

/// Why a cache file was not used (for the log and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// No such file.
    Missing,
    /// Not a regular file, unreadable, or too large.
    NotAFile,
    /// Too short, or the magic is wrong.
    NotACacheFile,
    /// The MAC does not verify under this directory's key.
    BadMac,
    /// Written by another format version, engine, name or source.
    Stale,
    /// Verified, yet the fields do not parse (a bug in whatever wrote it).
    Corrupt,
}

/// An open cache directory with its key.
pub(crate) struct BytecodeCache {
    dir: PathBuf,
    key: [u8; 32],
}

/// The engine version cache files are written for: a file written by another
/// engine (or another knit) is stale.
pub(crate) fn engine_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        // SAFETY: JS_GetVersion takes no arguments and returns a pointer to a
        // static NUL-terminated string (the version the C library was built as).
        let qjs = unsafe { std::ffi::CStr::from_ptr(rquickjs::qjs::JS_GetVersion()) };
        let endian = if cfg!(target_endian = "little") {
            "le"
        } else {
            "be"
        };
        format!(
            "quickjs-ng {} knit {} {}-{}-{}{}",
            qjs.to_string_lossy(),
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS,
            endian,
            usize::BITS,
        )
    })
}

/// The hash a cache entry is keyed by: the module's name (QuickJS writes it
/// into the bytecode), the compile options, and the source.
pub(crate) fn source_hash(name: &str, source: &str, strip_debug: bool) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("knit js module source v1");
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update(&[u8::from(strip_debug)]);
    h.update(source.as_bytes());
    *h.finalize().as_bytes()
}

impl BytecodeCache {
    /// Opens (creating if need be) the cache in `dir`, or `None`, with a
    /// warning, when the directory or its key cannot be used.
    pub(crate) fn open(dir: &Path) -> Option<BytecodeCache> {
        match open_key(dir) {
            Ok(key) => Some(BytecodeCache {
                dir: dir.to_owned(),
                key,
            }),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "knit: the JS bytecode cache is off; modules compile from source");
                None
            }
        }
    }

    /// The file that holds `name`'s entry.
    pub(crate) fn entry_path(&self, name: &str) -> PathBuf {
        // Readable, and unique per name: the hash tells apart names that
        // only differ in characters a file name cannot hold.
        let readable: String = name
            .chars()
            .take(48)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let id = blake3::hash(name.as_bytes()).to_hex();
        self.dir.join(format!("{readable}-{}.qjsc", &id[..16]))
    }

    /// The verified entry for `name` compiled from the source `hash` names.
    pub(crate) fn read(&self, name: &str, hash: &[u8; 32]) -> Result<CacheEntry, Reject> {
        let path = self.entry_path(name);
        let bytes = read_regular(&path, MAX_FILE_LEN).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Reject::Missing
            } else {
                Reject::NotAFile
            }
        })?;
        let entry = decode(&self.key, &bytes, engine_version(), name, hash);
        match entry {
            Err(Reject::BadMac) => {
                tracing::warn!(file = %path.display(), "knit: a JS bytecode cache file fails its MAC (corrupt, or not written under this directory's key); compiling from source")
            }
            Err(why) => {
                tracing::debug!(file = %path.display(), ?why, "knit: JS bytecode cache file not used")
            }
            Ok(_) => {}
        }
        entry
    }

    /// Writes `name`'s entry; a failure only costs a warning.
    pub(crate) fn write(
        &self,
        name: &str,
        hash: &[u8; 32],
        specifiers: &[String],
        bytecode: &[u8],
    ) {
        let bytes = encode(
            &self.key,
            engine_version(),
            name,
            hash,
            specifiers,
            bytecode,
        );
        self.write_bytes(name, &bytes);
    }

    /// Writes `bytes` as `name`'s entry, atomically.
    pub(crate) fn write_bytes(&self, name: &str, bytes: &[u8]) {
        let path = self.entry_path(name);
        let result = write_new(&self.dir, bytes).and_then(|tmp| {
            fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
        });
        if let Err(e) = result {
            tracing::warn!(file = %path.display(), error = %e, "knit: cannot write a JS bytecode cache file");
        }
    }

    /// This directory's key (the tests forge files with it).
    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

/// A cache file's bytes.
pub(crate) fn encode(
    key: &[u8; 32],
    engine: &str,
    name: &str,
    hash: &[u8; 32],
    specifiers: &[String],
    bytecode: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytecode.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(hash);
    // Engine versions and module names are short; longer ones are cut (a cut
    // name still matches only itself: the source hash covers the whole name).
    for s in [engine, name] {
        let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&(specifiers.len() as u32).to_le_bytes());
    for s in specifiers {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(bytecode.len() as u64).to_le_bytes());
    out.extend_from_slice(bytecode);
    let mac = blake3::keyed_hash(key, &out);
    out.extend_from_slice(mac.as_bytes());
    out
}

/// The entry in `bytes` if its MAC verifies under `key` and it was written
/// by `engine` for `name` with source hash `hash`.
pub(crate) fn decode(
    key: &[u8; 32],
    bytes: &[u8],
    engine: &str,
    name: &str,
    hash: &[u8; 32],
) -> Result<CacheEntry, Reject> {
    if bytes.len() < MAGIC.len() + 4 + 32 + MAC_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Reject::NotACacheFile);
    }
    let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    // blake3::Hash compares in constant time.
    if blake3::keyed_hash(key, body)
        != blake3::Hash::from_slice(mac).map_err(|_| Reject::Corrupt)?
    {
        return Err(Reject::BadMac);
    }
    let mut r = Fields(&body[MAGIC.len()..]);
    if r.u32()? != FORMAT_VERSION {
        return Err(Reject::Stale);
    }
    let stored_hash = r.take(32)?;
    let stored_engine = r.str(2)?;
    let stored_name = r.str(2)?;
    if stored_hash != hash
        || stored_engine != engine
        || stored_name != &name[..name.len().min(u16::MAX as usize)]
    {
        return Err(Reject::Stale);
    }
    let count = r.u32()?;
    let specifiers = (0..count)
        .map(|_| r.str(4).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    let len = usize::try_from(r.u64()?).map_err(|_| Reject::Corrupt)?;
    let bytecode = r.take(len)?.to_vec();
    if !r.0.is_empty() {
        return Err(Reject::Corrupt);
    }
    Ok(CacheEntry {
        bytecode,
        specifiers,
    })
}

/// A cursor over a verified file's fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reject> {
        if self.0.len() < n {
            return Err(Reject::Corrupt);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, Reject> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| Reject::Corrupt)?,
        ))
    }
    fn u64(&mut self) -> Result<u64, Reject> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Reject::Corrupt)?,
        ))
    }
    /// A string after a length of `width` bytes (2 or 4).
    fn str(&mut self, width: usize) -> Result<&'a str, Reject> {
        let len = match width {
            2 => {
                u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| Reject::Corrupt)?) as usize
            }
            _ => self.u32()? as usize,
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| Reject::Corrupt)
    }
}

/// The directory's key, created if there is none yet.
fn open_key(dir: &Path) -> io::Result<[u8; 32]> {
    create_dir(dir)?;
    let path = dir.join(KEY_FILE);
    match read_key(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no random key: {e}")))?;
    let tmp = write_new(dir, &key)?;
    // A hard link never replaces a key another process made first: then
    // both use that one.
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dir(_dir: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the bytecode cache checks its key file's owner and mode, which needs a Unix file system",
    ))
}

/// Reads the key, if it is a file only this user can read.
#[cfg(unix)]
fn read_key(path: &Path) -> io::Result<[u8; 32]> {
    use std::os::unix::fs::MetadataExt;
    let (file, meta) = open_regular(path)?;
    let euid = rustix::process::geteuid().as_raw();
    let why = if meta.uid() != euid {
        "it belongs to another user"
    } else if meta.mode() & 0o077 != 0 {
        "its permissions let other users read or change it (it must be 0600)"
    } else if meta.len() != 32 {
        "it is not 32 bytes long"
    } else {
        let mut key = [0u8; 32];
        (&file).read_exact(&mut key)?;
        return Ok(key);
    };
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("the cache key {} is not used: {why}", path.display()),
    ))
}

#[cfg(not(unix))]
fn read_key(_path: &Path) -> io::Result<[u8; 32]> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the cache key's owner and mode cannot be checked here",
    ))
}

/// Opens `path` if it is a regular file (not through a symlink, and without
/// blocking on a FIFO planted there).
#[cfg(unix)]
fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta))
}

#[cfg(not(unix))]
fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// A regular file's bytes, up to `max` of them.
fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to a new temporary file (mode 0600) in `dir` and returns its path.
fn write_new(dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".knit-tmp-{}-{n}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = options.open(&tmp).and_then(|mut f| f.write_all(bytes));
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}
