//! A bounds check of every declared value length of a DICOM byte stream, before dicom-rs
//! parses it. dicom-rs reserves and zero-fills a value's buffer from its declared length
//! before reading the value, so a 506-byte file declaring an 850 MB element made the decoder
//! use 850 MB (found by the `image_decode` fuzz target; a 32-bit length allows 4 GiB). Here
//! every defined length must fit in the bytes that follow it, so parsing allocates at most
//! about the file's size.
//!
//! The file meta group is checked by hand, read the way dicom-rs reads it (by its group
//! length). The data set is then walked with dicom-rs's own tokenizer (`DataSetReader`, the
//! one `dicom-object` builds objects with, so the check sees exactly the element and item
//! headers the real parse will see): each header's defined length is compared with the bytes
//! left *before* the token that reads the value is requested. An earlier hand-written walk of
//! the data set diverged from dicom-rs on malformed files (a misaligned meta group, a
//! (FFFE,FFFF) tag, a UL of 14 bytes) and each divergence was a multi-GB allocation found by
//! fuzzing. Deflated data sets are left alone: their lengths refer to the inflated stream.
//! Written by hand (around dicom-rs's tokenizer) because dicom-rs has no option to bound
//! allocations.

use std::cell::Cell;
use std::io::{Cursor, Read};
use std::rc::Rc;

use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::FileMetaTable;
use dicom_parser::DataSetReader;
use dicom_parser::dataset::DataToken;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// VRs whose explicit header has a 16-bit length; every other VR (an unknown one included,
/// which dicom-rs reads as UN) has 2 reserved bytes and a 32-bit length.
fn short_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// Little-endian reads of the meta group (always explicit VR little endian).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            self.bytes.get(at..at + 2)?.try_into().ok()?,
        ))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.bytes.get(at..at + 4)?.try_into().ok()?,
        ))
    }
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
    /// Errs when `len` (declared at `tag`) does not fit in what follows.
    fn fits(&self, tag: (u16, u16), len: u32) -> Result<(), String> {
        if len as usize > self.remaining() {
            return Err(format!(
                "element ({:04X},{:04X}) at byte {} declares a value of {len} bytes, but only {} bytes follow",
                tag.0,
                tag.1,
                self.pos,
                self.remaining()
            ));
        }
        Ok(())
    }
}

/// Checks the declared lengths of `bytes` (a Part 10 stream, `DICM` at 128 or at 0). A stream
/// it cannot follow (truncated header, unknown transfer syntax) is left to dicom-rs, which
/// reports it.
pub(crate) fn check_lengths(bytes: &[u8]) -> Result<(), String> {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        return Ok(());
    };
    let mut r = Reader { bytes, pos: start };
    // File meta group: explicit VR little endian, read the way dicom-rs reads it: the group
    // length element (0002,0000) first, then elements (of any group) until that many bytes
    // are consumed. Following the group number instead lets a file whose group length
    // disagrees with its elements start the data set where dicom-rs does not (a fuzzed file
    // made dicom-rs allocate 4 GB from a misaligned length that this check never saw).
    let Some(((0x0002, 0x0000), 4, header)) = explicit_header(&r) else {
        return Ok(()); // dicom-rs refuses it before reading any value
    };
    r.pos += header;
    let Some(group_length) = r.u32(r.pos) else {
        return Ok(());
    };
    r.pos += 4;
    let mut consumed: u64 = 0;
    while consumed < u64::from(group_length) {
        let Some((tag, len, header)) = explicit_header(&r) else {
            return Ok(());
        };
        r.pos += header;
        if len == UNDEFINED {
            return Ok(()); // dicom-rs refuses undefined lengths in the meta group
        }
        r.fits(tag, len)?;
        r.pos += len as usize;
        consumed += (header + len as usize) as u64;
    }
    check_data_set(bytes, start - 4)
}

/// A reader that counts what it hands out (the tokenizer reads its source directly, without
/// buffering ahead, so this is its position).
struct Counting<'a> {
    inner: &'a [u8],
    pos: Rc<Cell<usize>>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.set(self.pos.get() + n);
        Ok(n)
    }
}

/// Walks the data set after the meta group (`dicm` = offset of the `DICM` magic) with
/// dicom-rs's tokenizer; errs on the first defined length past the end. Whatever the
/// tokenizer itself refuses is left to the real parse, which reports it.
fn check_data_set(bytes: &[u8], dicm: usize) -> Result<(), String> {
    let mut cur = Cursor::new(&bytes[dicm..]);
    let Ok(meta) = FileMetaTable::from_reader(&mut cur) else {
        return Ok(());
    };
    let uid = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let Some(ts) = TransferSyntaxRegistry.get(&uid) else {
        return Ok(());
    };
    if !matches!(ts.codec(), Codec::None | Codec::EncapsulatedPixelData(..)) {
        return Ok(()); // deflated: lengths refer to the inflated stream
    }
    let base = dicm + cur.position() as usize;
    let pos = Rc::new(Cell::new(0usize));
    let src = Counting {
        inner: &bytes[base..],
        pos: pos.clone(),
    };
    let Ok(reader) = DataSetReader::new_with_ts(src, ts) else {
        return Ok(());
    };
    let total = bytes.len() - base;
    for token in reader {
        let (tag, len) = match token {
            Err(_) => return Ok(()),
            Ok(DataToken::ElementHeader(h)) => ((h.tag.0, h.tag.1), h.len),
            Ok(DataToken::ItemStart { len }) => ((0xFFFE, 0xE000), len),
            Ok(_) => continue,
        };
        let Some(len) = len.get() else { continue };
        let left = total - pos.get().min(total);
        if len as usize > left {
            return Err(format!(
                "element ({:04X},{:04X}) at byte {} declares a value of {len} bytes, but only {left} bytes follow",
                tag.0,
                tag.1,
                base + pos.get()
            ));
        }
    }
    Ok(())
}

/// (tag, length, header size) of the explicit-VR element at the reader's position.
fn explicit_header(r: &Reader<'_>) -> Option<((u16, u16), u32, usize)> {
    let tag = (r.u16(r.pos)?, r.u16(r.pos + 2)?);
    let vr: [u8; 2] = r.bytes.get(r.pos + 4..r.pos + 6)?.try_into().ok()?;
    if short_length(vr) {
        Some((tag, u32::from(r.u16(r.pos + 6)?), 8))
    } else {
        Some((tag, r.u32(r.pos + 8)?, 12))
    }
}
