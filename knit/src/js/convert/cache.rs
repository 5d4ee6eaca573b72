//! Key atoms and object shapes cached across conversions (held by a
//! [`super::Converter`]).
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

/// The most keys an object may have for its shape to be kept.
pub(super) const MAX_SHAPE_KEYS: usize = 16;

/// Key sequences kept (a power of two).
pub(super) const SHAPE_SLOTS: usize = 64;

/// Object shapes kept alive across conversions (for `to_js`).
///
/// The engine shares an object's shape (its key layout) with every object
/// that has the same keys in the same order, looking each step up in a
/// hash table of live shapes; a shape no object uses is freed. So an
/// object built from scratch, its predecessor freed, allocates and grows a
/// new shape key by key. Keeping one template object per prefix of a key
/// sequence (`{a}`, `{a, b}`, …, values `undefined`) keeps every step's
/// shape alive, and building another object with those keys only follows
/// them. A sequence gets its templates the second time in a row it is met
/// in its slot (so objects whose keys keep changing cost nothing extra);
/// at most [`SHAPE_SLOTS`] sequences of at most [`MAX_SHAPE_KEYS`] keys are
/// kept, a new one evicting the one in its slot, and the templates are
/// freed with the cache.
pub(super) struct ShapeCache {
    raw: *mut qjs::JSContext,
    on: bool,
    slots: Vec<ShapeSlot>,
}

#[derive(Default)]
struct ShapeSlot {
    atoms: Vec<qjs::JSAtom>,
    /// One object per prefix of `atoms` (empty until met twice).
    templates: Vec<qjs::JSValue>,
}

impl ShapeSlot {
    fn free(&mut self, raw: *mut qjs::JSContext) {
        for v in self.templates.drain(..) {
            // SAFETY: each template is owned by the slot alone.
            unsafe { qjs::JS_FreeValue(raw, v) };
        }
    }
}

impl ShapeCache {
    /// A cache for `raw`, which must outlive it (it frees its templates there).
    pub(super) fn new(raw: *mut qjs::JSContext, on: bool) -> Self {
        ShapeCache {
            raw,
            on,
            slots: Vec::new(),
        }
    }

    /// Whether key shapes are kept at all.
    #[inline]
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// Notes that a plain object (`Object.prototype`, keys defined with
    /// `JS_PROP_C_W_E`) was built with the keys `atoms`, all live.
    pub(super) fn met(&mut self, atoms: &[qjs::JSAtom]) {
        if !self.on || atoms.is_empty() || atoms.len() > MAX_SHAPE_KEYS {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SHAPE_SLOTS, ShapeSlot::default);
        }
        let mut h = 0u64;
        for &a in atoms {
            h = (h.rotate_left(5) ^ u64::from(a)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        let slot = &mut self.slots[(h >> 58) as usize & (SHAPE_SLOTS - 1)];
        if slot.atoms != atoms {
            slot.free(self.raw);
            slot.atoms.clear();
            slot.atoms.extend_from_slice(atoms);
            return;
        }
        if !slot.templates.is_empty() {
            return;
        }
        for n in 1..=atoms.len() {
            // SAFETY: the context is live; the new object is owned by the
            // slot (or freed here); the atoms are live (the caller's object
            // holds them); each definition takes its (undefined) value.
            unsafe {
                let obj = qjs::JS_NewObject(self.raw);
                let mut ok = !qjs::JS_IsException(obj);
                for &a in &atoms[..n] {
                    if !ok {
                        break;
                    }
                    ok = qjs::JS_DefinePropertyValue(
                        self.raw,
                        obj,
                        a,
                        qjs::JS_UNDEFINED,
                        qjs::JS_PROP_C_W_E as i32,
                    ) >= 0;
                }
                if !ok {
                    // Out of memory: no templates, and no exception left.
                    qjs::JS_FreeValue(self.raw, obj);
                    qjs::JS_FreeValue(self.raw, qjs::JS_GetException(self.raw));
                    slot.free(self.raw);
                    return;
                }
                slot.templates.push(obj);
            }
        }
    }

    /// How many key sequences have templates (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.templates.is_empty())
            .count()
    }
}

impl Drop for ShapeCache {
    fn drop(&mut self) {
        for s in &mut self.slots {
            s.free(self.raw);
        }
    }
}
