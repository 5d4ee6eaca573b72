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

/// Where a runner encodes a task's result: a small one straight into the
/// bytes that become [`Outcome::Small`] (no buffer to size, clear or copy
/// out of), a larger one into a buffer that is moved into the outcome.
/// One per runner thread, reused for every call. Part of what `#[task]`
/// expands to, not a stable API.
pub struct ResultBuf {
    small: [u8; SMALL_RESULT],
    /// How many bytes of `small` hold the result, unless it spilled.
    len: u8,
    spill: Option<Vec<u8>>,
}

impl ResultBuf {
    pub(crate) fn new() -> Self {
        ResultBuf {
            small: [0; SMALL_RESULT],
            len: 0,
            spill: None,
        }
    }

    /// `len` bytes to encode a result into.
    pub(crate) fn bytes_for(&mut self, len: usize) -> &mut [u8] {
        if len <= SMALL_RESULT {
            self.len = len as u8;
            self.spill = None;
            &mut self.small[..len]
        } else {
            self.spill.insert(vec![0; len])
        }
    }

    /// The result encoded last, as an outcome (the buffer is then empty).
    pub(crate) fn take(&mut self) -> Outcome {
        match self.spill.take() {
            None => Outcome::Small {
                len: std::mem::take(&mut self.len),
                bytes: self.small,
            },
            Some(bytes) => Outcome::Bytes(bytes),
        }
    }
}

impl Outcome {
    /// The error, if the call failed (used for stats).
    pub(crate) fn error(&self) -> Option<&CallError> {
        match self {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(o: Outcome) -> Vec<u8> {
        match o {
            Outcome::Small { len, bytes } => bytes[..len as usize].to_vec(),
            Outcome::Bytes(b) => b,
            Outcome::Failed(e) => panic!("not a result: {e}"),
        }
    }

    #[test]
    fn small_and_spilled_results_alternate_without_leftovers() {
        let mut buf = ResultBuf::new();
        for (round, len) in [3, SMALL_RESULT, SMALL_RESULT + 1, 0, 5000, 7]
            .into_iter()
            .enumerate()
        {
            let want: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            buf.bytes_for(len).copy_from_slice(&want);
            let got = buf.take();
            assert_eq!(matches!(got, Outcome::Small { .. }), len <= SMALL_RESULT);
            assert_eq!(bytes(got), want, "round {round}, {len} bytes");
        }
        // A spilled encoding abandoned part way (the encoder failed) does not
        // reappear in the next result.
        buf.bytes_for(100).fill(9);
        buf.bytes_for(2).copy_from_slice(&[1, 2]);
        assert_eq!(bytes(buf.take()), [1, 2]);
        // Taking twice gives an empty result, never the previous bytes.
        assert_eq!(bytes(buf.take()), Vec::<u8>::new());
    }
}
