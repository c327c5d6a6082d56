//! A bounds check of every declared value length of a DICOM byte stream, before dicom-rs
//! parses it. dicom-rs reserves and zero-fills a value's buffer from its declared length
//! before reading the value, so a 506-byte file declaring an 850 MB element made the decoder
//! use 850 MB (found by the `image_decode` fuzz target; a 32-bit length allows 4 GiB). Here
//! every defined length must fit in the bytes that follow it, so parsing allocates at most
//! about the file's size.
//!
//! Only element headers are read, never values: the file meta group (explicit VR little
//! endian), then the data set in its transfer syntax's encoding (implicit VR little endian,
//! explicit VR little or big endian), descending into sequences and items; the items of
//! encapsulated pixel data are fragments and are skipped whole. Deflated data sets (and
//! transfer syntaxes not listed) are left to dicom-rs: their lengths refer to another byte
//! stream. Written by hand because dicom-rs has no option to bound allocations.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::VR;
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    ImplicitLe,
    ExplicitLe,
    ExplicitBe,
}

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

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
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
    let mut r = Reader {
        bytes,
        pos: start,
        big_endian: false,
    };
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
    let mut ts = String::new();
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
        if tag == (0x0002, 0x0010) {
            ts = String::from_utf8_lossy(&bytes[r.pos..r.pos + len as usize])
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        r.pos += len as usize;
        consumed += (header + len as usize) as u64;
    }
    let encoding = match ts.as_str() {
        "1.2.840.10008.1.2" => Encoding::ImplicitLe,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBe,
        // Deflated: the lengths refer to the inflated stream.
        "1.2.840.10008.1.2.1.99" | "1.2.840.10008.1.2.4.95" => return Ok(()),
        "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.5" => Encoding::ExplicitLe,
        t if t.starts_with("1.2.840.10008.1.2.4.") => Encoding::ExplicitLe,
        _ => return Ok(()),
    };
    r.big_endian = encoding == Encoding::ExplicitBe;
    walk(&mut r, encoding)
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

fn implicit_is_sequence(tag: (u16, u16)) -> bool {
    StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .is_some_and(|e| e.vr() == VirtualVr::Exact(VR::SQ))
}

/// Walks the data set linearly: an element with a value is skipped after its length is
/// checked; a sequence (undefined length, or a defined-length SQ) and an item are entered, so
/// their nested elements are checked too.
fn walk(r: &mut Reader<'_>, encoding: Encoding) -> Result<(), String> {
    // Inside encapsulated pixel data: items are fragments (bytes, not elements).
    let mut fragments = false;
    while r.remaining() >= 8 {
        let Some(tag) = r.u16(r.pos).zip(r.u16(r.pos + 2)) else {
            return Ok(());
        };
        // Only the item and the two delimiters have the 8-byte item header; dicom-rs reads any
        // other (FFFE,xxxx) tag as an ordinary element (with a VR in explicit encodings), and
        // so must this check (a fuzzed (FFFE,FFFF) declared 3 GB past this branch).
        if tag.0 == 0xFFFE && matches!(tag.1, 0xE000 | 0xE00D | 0xE0DD) {
            let Some(len) = r.u32(r.pos + 4) else {
                return Ok(());
            };
            r.pos += 8;
            match tag.1 {
                0xE000 if len != UNDEFINED => {
                    r.fits(tag, len)?;
                    if fragments {
                        r.pos += len as usize;
                    }
                }
                0xE0DD => fragments = false,
                _ => {}
            }
            continue;
        }
        let (len, header, sequence) = if encoding == Encoding::ImplicitLe {
            let Some(len) = r.u32(r.pos + 4) else {
                return Ok(());
            };
            (len, 8, implicit_is_sequence(tag))
        } else {
            let Some((_, len, header)) = explicit_header(r) else {
                return Ok(());
            };
            (
                len,
                header,
                r.bytes.get(r.pos + 4..r.pos + 6) == Some(b"SQ"),
            )
        };
        r.pos += header;
        if len == UNDEFINED {
            // A sequence, or encapsulated pixel data: its items follow.
            if tag == (0x7FE0, 0x0010) {
                fragments = true;
            }
            continue;
        }
        r.fits(tag, len)?;
        if !sequence {
            r.pos += len as usize;
        }
    }
    Ok(())
}
