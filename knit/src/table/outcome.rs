//! What a finished call holds until its caller takes it.

use crate::error::CallError;

/// Results up to this many encoded bytes are kept in the slot itself, so the
/// common small result costs no allocation.
pub(crate) const SMALL_RESULT: usize = 30;

/// A finished call: the encoded result, or why there is none.
pub(crate) enum Outcome {
    Small { len: u8, bytes: [u8; SMALL_RESULT] },
    Bytes(Vec<u8>),
    Failed(CallError),
}

impl Outcome {
    /// Takes an encoded result out of `out`: a small one is copied (the runner
    /// reuses its buffer), a large one is moved.
    pub(crate) fn from_encoded(out: &mut Vec<u8>) -> Outcome {
        if out.len() <= SMALL_RESULT {
            let mut bytes = [0u8; SMALL_RESULT];
            bytes[..out.len()].copy_from_slice(out);
            let len = out.len() as u8;
            out.clear();
            Outcome::Small { len, bytes }
        } else {
            Outcome::Bytes(std::mem::take(out))
        }
    }

    /// The error, if the call failed (used for stats).
    pub(crate) fn error(&self) -> Option<&CallError> {
        match self {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}
