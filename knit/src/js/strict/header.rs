//! The header in front of a strict call's arguments: the script, the export, the budgets and the grants, read with bounds checks.

use std::time::Duration;

use crate::js_limits::Limits;

/// The most host functions one call may be granted.
const MAX_GRANTS: usize = 1024;

/// What a strict call asks for, before its wire arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub script: u64,
    pub export: String,
    pub limits: Limits,
    /// Indexes into the pool's exposed host functions.
    pub grants: Vec<u16>,
}

impl Header {
    /// Appends the header to `out` (the arguments follow it).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.script.to_le_bytes());
        let l = &self.limits;
        for v in [
            l.cpu.as_nanos().min(u64::MAX as u128) as u64,
            l.wall.as_nanos().min(u64::MAX as u128) as u64,
            l.memory_bytes as u64,
            l.stack_bytes as u64,
            l.input_bytes as u64,
            l.output_bytes as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let export = self.export.as_bytes();
        out.extend_from_slice(&(export.len() as u32).to_le_bytes());
        out.extend_from_slice(export);
        out.extend_from_slice(&(self.grants.len() as u16).to_le_bytes());
        for g in &self.grants {
            out.extend_from_slice(&g.to_le_bytes());
        }
    }

    /// Reads a header off the front of `input`: it and the arguments after
    /// it. `None` for bytes that are no header (truncated, oversized fields,
    /// an export name that is not UTF-8).
    pub(crate) fn read(input: &[u8]) -> Option<(Header, &[u8])> {
        let mut r = Reader(input);
        let script = r.u64()?;
        let mut v = [0u64; 6];
        for slot in &mut v {
            *slot = r.u64()?;
        }
        let size = |n: u64| usize::try_from(n).ok();
        let limits = Limits {
            cpu: Duration::from_nanos(v[0]),
            wall: Duration::from_nanos(v[1]),
            memory_bytes: size(v[2])?,
            stack_bytes: size(v[3])?,
            input_bytes: size(v[4])?,
            output_bytes: size(v[5])?,
        };
        let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        let export = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
        let count = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        if count > MAX_GRANTS {
            return None;
        }
        let mut grants = Vec::with_capacity(count);
        for _ in 0..count {
            grants.push(u16::from_le_bytes(r.take(2)?.try_into().ok()?));
        }
        let header = Header {
            script,
            export,
            limits,
            grants,
        };
        Some((header, r.0))
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            script: 0x0123_4567_89ab_cdef,
            export: "default".into(),
            limits: Limits::default(),
            grants: vec![0, 3],
        }
    }

    #[test]
    fn a_header_reads_back_with_the_arguments_after_it() {
        let mut bytes = Vec::new();
        sample().write(&mut bytes);
        bytes.extend_from_slice(b"args");
        let (header, rest) = Header::read(&bytes).expect("a header");
        assert_eq!(header, sample());
        assert_eq!(rest, b"args");
    }

    #[test]
    fn every_truncation_and_a_bad_name_are_refused() {
        let mut bytes = Vec::new();
        sample().write(&mut bytes);
        for cut in 0..bytes.len() {
            assert!(Header::read(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        // The export name's first byte (after 7 u64s and its u32 length).
        let mut bad = bytes.clone();
        bad[60] = 0xff;
        assert!(Header::read(&bad).is_none());
        // A length far beyond the bytes.
        let mut long = bytes;
        long[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Header::read(&long).is_none());
    }
}
