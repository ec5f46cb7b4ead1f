//! Record set entries: v2 record batches and legacy (v0/v1) message sets.
//!
//! Counting records never needs decompression: the v2 batch header (61 bytes, before
//! the possibly compressed records) holds the count, the codec and the offsets.

use super::big_endian::be_int;

/// Bytes read of every entry before its format is known: base offset (8), length (4),
/// partition leader epoch or CRC (4), magic (1).
pub const ENTRY_PREFIX: usize = 17;
/// The rest of a v2 batch header after the prefix: 61 - 17.
pub const V2_HEADER_REST: usize = 44;

/// Compression codec from the batch attributes (bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown,
}

impl Codec {
    pub const ALL: [Codec; 6] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
        Codec::Unknown,
    ];

    pub const fn from_attributes(attributes: i64) -> Codec {
        match attributes & 0x07 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            _ => Codec::Unknown,
        }
    }

    /// The `compression` label value.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
            Codec::Unknown => "unknown",
        }
    }
}

/// What the filter learns from one record-set entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Offset of the last record: base offset plus last offset delta.
    pub last_offset: i64,
    pub records: u32,
    /// The whole entry on the wire, header included.
    pub size: u64,
    pub codec: Codec,
    /// Transaction markers carry no application records.
    pub control: bool,
    /// Written inside a transaction (attributes bit 4), by `producer_id`.
    pub transactional: bool,
    pub producer_id: i64,
    pub magic: u8,
}

impl BatchHeader {
    /// A v2 batch from its base offset, batch length and the 44 header bytes after the
    /// entry prefix (`crc` at 0, `attributes` at 4, `lastOffsetDelta` at 6, `producerId`
    /// at 26, `recordsCount` at 40).
    pub fn v2(base_offset: i64, batch_length: i32, rest: &[u8]) -> Self {
        let field = |at: usize, width: usize| rest.get(at..at + width).map_or(0, be_int);
        let attributes = field(4, 2);
        BatchHeader {
            base_offset,
            last_offset: base_offset.saturating_add(field(6, 4)),
            records: field(40, 4).max(0) as u32,
            size: 12 + batch_length.max(0) as u64,
            codec: Codec::from_attributes(attributes),
            control: attributes & 0x20 != 0,
            transactional: attributes & 0x10 != 0,
            producer_id: field(26, 8),
            magic: 2,
        }
    }

    /// A legacy message (magic 0 or 1): one record, or one compressed wrapper whose inner
    /// count would need decompression; counted as one.
    pub fn legacy(offset: i64, size: u64, magic: u8) -> Self {
        BatchHeader {
            base_offset: offset,
            last_offset: offset,
            records: 1,
            size,
            codec: Codec::None,
            control: false,
            transactional: false,
            producer_id: -1,
            magic,
        }
    }
}
