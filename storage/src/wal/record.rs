//! Record framing: `[length u32 LE][crc32 u32 LE][payload]`.

/// Bytes before a record's payload.
pub const HEADER_LEN: usize = 8;

/// Largest payload a record may carry.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// Appends the framed `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends a record whose payload `write` produces in place, then fills in its header.
/// Returns the payload length; on an empty or oversized payload, `out` is left unchanged and
/// the length is returned as an error.
pub fn encode_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Result<usize, usize> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    write(out);
    let len = out.len() - start - HEADER_LEN;
    if len == 0 || len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(len);
    }
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(len)
}

/// What is at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An intact record and the number of bytes it occupies.
    Record(&'a [u8], usize),
    /// Nothing left: a clean end.
    End,
    /// A damaged record; the reason is for the log.
    Damaged(&'static str),
}

/// Reads the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Frame<'_> {
    if buf.is_empty() {
        return Frame::End;
    }
    if buf.len() < HEADER_LEN {
        return Frame::Damaged("torn record header");
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_PAYLOAD_LEN {
        return Frame::Damaged("bad record length");
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Frame::Damaged("record truncated mid-payload");
    };
    if crc32fast::hash(payload) != crc {
        return Frame::Damaged("record checksum mismatch");
    }
    Frame::Record(payload, HEADER_LEN + len)
}
