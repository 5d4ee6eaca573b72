//! Key atoms cached across conversions (held by a [`super::Converter`]).
//!
//! Struct-shaped payloads repeat the same few keys in every conversion.
//! Without a cache each key is interned (hashed and looked up in the
//! runtime's atom table) on the way in and turned back into a C string on
//! the way out. Two small direct-mapped tables avoid both: key bytes to
//! atom (for `to_js`) and atom to key bytes (for `from_js`). A slot holds
//! its own reference to its atom; a new key landing on a taken slot evicts
//! the old one (its atom is freed), and dropping the cache frees them all,
//! so the cache stays bounded ([`SLOTS`] keys of at most [`MAX_KEY`] bytes
//! per table) and leaks nothing past its context.

use rquickjs::qjs;

/// The longest key (in UTF-8 bytes) the cache keeps; longer keys are
/// converted each time, as without a cache.
pub(super) const MAX_KEY: usize = 27;

/// Slots per table (a power of two).
pub(super) const SLOTS: usize = 256;

/// One cached key: its atom (`JS_ATOM_NULL` when empty) and its bytes.
#[derive(Clone, Copy)]
struct Slot {
    atom: qjs::JSAtom,
    len: u8,
    bytes: [u8; MAX_KEY],
}

const EMPTY: Slot = Slot {
    atom: qjs::JS_ATOM_NULL,
    len: 0,
    bytes: [0; MAX_KEY],
};

impl Slot {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Takes over one reference to `atom` (the old one is freed).
    fn fill(&mut self, raw: *mut qjs::JSContext, atom: qjs::JSAtom, key: &[u8]) {
        debug_assert!(key.len() <= MAX_KEY);
        if self.atom != qjs::JS_ATOM_NULL {
            // SAFETY: the slot owns one reference to its atom, released once.
            unsafe { qjs::JS_FreeAtom(raw, self.atom) };
        }
        self.atom = atom;
        self.len = key.len() as u8;
        self.bytes[..key.len()].copy_from_slice(key);
    }
}

/// Both tables, allocated on first use; off (never filled) for the
/// one-shot `to_js` / `from_js`.
pub(super) struct KeyCache {
    raw: *mut qjs::JSContext,
    on: bool,
    by_bytes: Vec<Slot>,
    by_atom: Vec<Slot>,
}

/// FxHash-style over 8-byte words, folded to a slot index.
#[inline]
fn hash_bytes(key: &[u8]) -> usize {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    (h >> 56) as usize & (SLOTS - 1)
}

/// The to-JS slot of `key` (for tests that make keys collide).
#[cfg(test)]
pub(super) fn slot_of(key: &str) -> usize {
    hash_bytes(key.as_bytes())
}

#[inline]
fn hash_atom(atom: qjs::JSAtom) -> usize {
    (atom.wrapping_mul(0x9e37_79b1) >> 24) as usize & (SLOTS - 1)
}

impl KeyCache {
    /// A cache for `raw`, which must outlive it (it frees its atoms there).
    pub(super) fn new(raw: *mut qjs::JSContext, on: bool) -> Self {
        KeyCache {
            raw,
            on,
            by_bytes: Vec::new(),
            by_atom: Vec::new(),
        }
    }

    /// The atom for `key`, and whether the caller owns it (and must free
    /// it); a cached atom stays the cache's. `None`: the engine failed
    /// (its exception is pending).
    #[inline]
    pub(super) fn atom(&mut self, key: &str) -> Option<(qjs::JSAtom, bool)> {
        let k = key.as_bytes();
        let slot = if self.on && k.len() <= MAX_KEY {
            if self.by_bytes.is_empty() {
                self.by_bytes = vec![EMPTY; SLOTS];
            }
            let i = hash_bytes(k);
            let s = &self.by_bytes[i];
            if s.atom != qjs::JS_ATOM_NULL && s.key() == k {
                return Some((s.atom, false));
            }
            Some(i)
        } else {
            None
        };
        // SAFETY: `key` is valid UTF-8 of `k.len()` bytes; the context is live.
        let atom = unsafe { qjs::JS_NewAtomLen(self.raw, key.as_ptr().cast(), k.len() as _) };
        if atom == qjs::JS_ATOM_NULL {
            return None;
        }
        match slot {
            Some(i) => {
                self.by_bytes[i].fill(self.raw, atom, k);
                Some((atom, false))
            }
            None => Some((atom, true)),
        }
    }

    /// The cached (well-formed UTF-8) bytes of `atom`'s key, if any.
    #[inline]
    pub(super) fn key(&self, atom: qjs::JSAtom) -> Option<&[u8]> {
        let s = self.by_atom.get(hash_atom(atom))?;
        (s.atom == atom).then(|| s.key())
    }

    /// Remembers `key` as `atom`'s bytes (when short enough).
    #[inline]
    pub(super) fn put_key(&mut self, atom: qjs::JSAtom, key: &[u8]) {
        if !self.on || key.len() > MAX_KEY || atom == qjs::JS_ATOM_NULL {
            return;
        }
        if self.by_atom.is_empty() {
            self.by_atom = vec![EMPTY; SLOTS];
        }
        // SAFETY: `atom` is live (the caller holds it); the slot takes its own reference.
        let atom = unsafe { qjs::JS_DupAtom(self.raw, atom) };
        self.by_atom[hash_atom(atom)].fill(self.raw, atom, key);
    }

    /// How many keys each table holds (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        let n = |t: &[Slot]| t.iter().filter(|s| s.atom != qjs::JS_ATOM_NULL).count();
        (n(&self.by_bytes), n(&self.by_atom))
    }
}

impl Drop for KeyCache {
    fn drop(&mut self) {
        for s in self.by_bytes.iter().chain(&self.by_atom) {
            if s.atom != qjs::JS_ATOM_NULL {
                // SAFETY: each slot owns one reference to its atom; the
                // context outlives the cache (see `new`).
                unsafe { qjs::JS_FreeAtom(self.raw, s.atom) };
            }
        }
    }
}
