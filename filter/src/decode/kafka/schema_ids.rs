//! The schema id a record value starts with (the Confluent wire format: magic byte 0,
//! then a 4-byte big-endian id), read from an uncompressed v2 batch's records as they
//! stream by, when `records_by_schema` is on.
//!
//! Hand-written for the walker's reasons: it runs on every produced record. It is
//! zero-copy and resumable at any byte; keys, the rest of each value and the headers are
//! stepped over by length ([`RecordValues::skippable`], so the host need not copy them).
//! All it keeps is a varint in progress and a value's first five bytes. The host reads
//! the records in chunks of [`READ_SIZE`]: per read, not per byte, is what costs in Envoy
//! (measured, `bench/results/records-by-schema.md`). A record whose
//! fields overrun it, or the batch, is a [`DecodeError`], never a panic.

use super::error::DecodeError;

/// Bytes read from the host at once inside a batch read record by record. A hostcall per
/// record (reads of a record's head only) cost Envoy as much as copying whole 1 KiB
/// records 16 at a time; 16 KiB reads halved the filter's cost on 1 KiB records and left
/// 16 KiB records' unchanged.
pub const READ_SIZE: u64 = 16 * 1024;

/// What a record value says about its schema: the `schema` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaTag {
    /// Magic byte 0 and this id.
    Id(u32),
    /// No such prefix: a null value, one shorter than five bytes, another first byte.
    None,
    /// A record of a compressed batch, not read: the filter never decompresses.
    Compressed,
    /// Beyond the distinct ids kept (per message and topic, or per VM).
    Other,
}

impl SchemaTag {
    /// The tag of a value's first bytes (`prefix` holds at most five).
    pub fn of_value(prefix: &[u8]) -> SchemaTag {
        match prefix {
            [0, a, b, c, d] => SchemaTag::Id(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => SchemaTag::None,
        }
    }
}

/// Records per schema tag for one topic of one message: a few entries inline (a topic's
/// records rarely carry more than two schemas at once), further tags folded into the
/// last entry as [`SchemaTag::Other`]. Inline, so a message's memory stays what its
/// topic list holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchemaCounts {
    entries: [(Option<SchemaTag>, u32); 4],
}

impl SchemaCounts {
    pub fn add(&mut self, tag: SchemaTag, records: u32) {
        // The tag's entry, else a free one; when none is free, the last entry turns
        // into Other and takes every further tag.
        let last = self.entries.len() - 1;
        let slot = self
            .entries
            .iter()
            .position(|(t, _)| t.is_none_or(|t| t == tag))
            .unwrap_or(last);
        let entry = &mut self.entries[slot];
        entry.0 = match entry.0 {
            Some(t) if t != tag => Some(SchemaTag::Other),
            _ => Some(tag),
        };
        entry.1 = entry.1.saturating_add(records);
    }

    /// (tag, records) with records > 0.
    pub fn iter(&self) -> impl Iterator<Item = (SchemaTag, u32)> + '_ {
        self.entries
            .iter()
            .filter_map(|&(tag, n)| tag.filter(|_| n > 0).map(|t| (t, n)))
    }
}

/// Where a record's reading stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// The record's length (a zigzag varint), or the end of the batch.
    Length,
    Attributes,
    /// A zigzag varlong.
    TimestampDelta,
    OffsetDelta,
    KeyLength,
    /// Key bytes still to step over.
    Key {
        left: u64,
    },
    ValueLength,
    /// The value's first `want` (at most five) bytes.
    ValuePrefix {
        want: u8,
    },
    /// The rest of the record (value, headers), stepped over.
    Rest,
}

/// The records of one uncompressed v2 batch, reporting each value's [`SchemaTag`].
#[derive(Clone, Copy, Debug)]
pub struct RecordValues {
    /// Bytes of the batch's records section after the current record.
    batch_left: u64,
    /// Bytes of the current record still to come.
    record_left: u64,
    field: Field,
    varint: u64,
    shift: u32,
    prefix: [u8; 5],
    have: u8,
}

impl RecordValues {
    /// The reader of a records section of `len` bytes (the batch after its header).
    pub fn new(len: u64) -> Self {
        RecordValues {
            batch_left: len,
            record_left: 0,
            field: Field::Length,
            varint: 0,
            shift: 0,
            prefix: [0; 5],
            have: 0,
        }
    }

    /// Every record of the batch was read.
    pub fn is_done(&self) -> bool {
        self.field == Field::Length && self.shift == 0 && self.batch_left == 0
    }

    /// Bytes from here on stepped over unseen (a key, the rest of a record).
    pub fn skippable(&self) -> u64 {
        match self.field {
            Field::Key { left } => left,
            Field::Rest => self.record_left,
            _ => 0,
        }
    }

    /// Step over up to `n` bytes, at most [`skippable`](Self::skippable), without being
    /// given them. Returns how many were passed.
    pub fn pass_over(&mut self, n: u64) -> u64 {
        let take = n.min(self.skippable());
        self.record_left -= take;
        match &mut self.field {
            Field::Key { left } => {
                *left -= take;
                if *left == 0 {
                    self.field = Field::ValueLength;
                }
            }
            Field::Rest if self.record_left == 0 => self.field = Field::Length,
            _ => {}
        }
        take
    }

    /// Read the next chunk, reporting each record's tag. Returns the bytes consumed: all
    /// of `input`, or fewer when the batch ended inside it.
    pub fn feed(
        &mut self,
        input: &[u8],
        report: &mut impl FnMut(SchemaTag),
    ) -> Result<usize, DecodeError> {
        let mut pos = 0;
        while pos < input.len() && !self.is_done() {
            let skip = self.skippable();
            if skip > 0 {
                let n = skip.min((input.len() - pos) as u64);
                pos += self.pass_over(n) as usize;
                continue;
            }
            let byte = input[pos];
            pos += 1;
            self.byte(byte, report)?;
        }
        Ok(pos)
    }

    fn byte(&mut self, byte: u8, report: &mut impl FnMut(SchemaTag)) -> Result<(), DecodeError> {
        // Every byte belongs to the batch; every byte after the length to the record.
        if self.field == Field::Length {
            self.batch_left = self
                .batch_left
                .checked_sub(1)
                .ok_or(DecodeError::BadRecordBatch)?;
        } else {
            self.record_left = self
                .record_left
                .checked_sub(1)
                .ok_or(DecodeError::BadRecordBatch)?;
        }
        match self.field {
            Field::Attributes => self.field = Field::TimestampDelta,
            Field::ValuePrefix { want } => {
                self.prefix[usize::from(self.have)] = byte;
                self.have += 1;
                if self.have == want {
                    report(SchemaTag::of_value(&self.prefix[..usize::from(want)]));
                    self.have = 0;
                    self.value_read();
                }
            }
            Field::Key { .. } | Field::Rest => {}
            Field::Length
            | Field::TimestampDelta
            | Field::OffsetDelta
            | Field::KeyLength
            | Field::ValueLength => {
                let max_shift = if self.field == Field::TimestampDelta {
                    63
                } else {
                    28
                };
                self.varint |= u64::from(byte & 0x7f) << self.shift;
                if byte & 0x80 != 0 {
                    if self.shift >= max_shift {
                        return Err(DecodeError::BadVarint);
                    }
                    self.shift += 7;
                    return Ok(());
                }
                let value = zigzag(self.varint);
                self.varint = 0;
                self.shift = 0;
                self.varint_read(value, report)?;
            }
        }
        Ok(())
    }

    fn varint_read(
        &mut self,
        value: i64,
        report: &mut impl FnMut(SchemaTag),
    ) -> Result<(), DecodeError> {
        match self.field {
            Field::Length => {
                let len = u64::try_from(value).map_err(|_| DecodeError::BadLength)?;
                if len > self.batch_left {
                    return Err(DecodeError::BadRecordBatch);
                }
                self.batch_left -= len;
                self.record_left = len;
                self.field = Field::Attributes;
            }
            Field::TimestampDelta => self.field = Field::OffsetDelta,
            Field::OffsetDelta => self.field = Field::KeyLength,
            Field::KeyLength => {
                self.field = match self.length(value)? {
                    0 => Field::ValueLength,
                    left => Field::Key { left },
                }
            }
            Field::ValueLength => match value {
                -1 => {
                    report(SchemaTag::None);
                    self.value_read();
                }
                _ => match self.length(value)? {
                    0 => {
                        report(SchemaTag::None);
                        self.value_read();
                    }
                    len => {
                        let want = len.min(5) as u8;
                        self.field = Field::ValuePrefix { want };
                    }
                },
            },
            Field::Attributes | Field::Key { .. } | Field::ValuePrefix { .. } | Field::Rest => {}
        }
        Ok(())
    }

    /// A key or value length: -1 (null) is 0 bytes; it must fit in the record.
    fn length(&self, value: i64) -> Result<u64, DecodeError> {
        if value < -1 {
            return Err(DecodeError::BadLength);
        }
        let len = value.max(0) as u64;
        if len > self.record_left {
            return Err(DecodeError::BadRecordBatch);
        }
        Ok(len)
    }

    /// The value's tag is reported: the rest of the record is stepped over.
    fn value_read(&mut self) {
        self.field = if self.record_left == 0 {
            Field::Length
        } else {
            Field::Rest
        };
    }
}

const fn zigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the v2 format lays it out: length, attributes, timestamp and offset
    /// deltas, key, value, headers (one, to check they are stepped over).
    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        fn varint(out: &mut Vec<u8>, v: i64) {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            loop {
                let b = (z & 0x7f) as u8;
                z >>= 7;
                if z == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
        }
        let mut body = vec![0];
        varint(&mut body, 1_700_000_000_000);
        varint(&mut body, 3);
        for field in [key, value] {
            match field {
                Some(b) => {
                    varint(&mut body, b.len() as i64);
                    body.extend_from_slice(b);
                }
                None => varint(&mut body, -1),
            }
        }
        varint(&mut body, 1);
        for h in [&b"kiosk-schema-id"[..], b"7"] {
            varint(&mut body, h.len() as i64);
            body.extend_from_slice(h);
        }
        let mut out = Vec::new();
        varint(&mut out, body.len() as i64);
        out.extend(body);
        out
    }

    fn framed(id: u32, json: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(json);
        v
    }

    fn sample() -> (Vec<u8>, Vec<SchemaTag>) {
        type Case<'a> = (Option<&'a [u8]>, Vec<u8>, SchemaTag);
        let cases: Vec<Case> = vec![
            (Some(b"k1"), framed(7, b"{\"n\":1}"), SchemaTag::Id(7)),
            (None, framed(0x0102_0304, b""), SchemaTag::Id(0x0102_0304)),
            (Some(b""), b"{\"n\":2}".to_vec(), SchemaTag::None),
            (Some(b"k"), vec![0, 0, 1], SchemaTag::None),
            (Some(&[7; 300]), vec![1, 0, 0, 0, 7, 9], SchemaTag::None),
        ];
        let mut bytes = Vec::new();
        let mut tags = Vec::new();
        for (key, value, tag) in cases {
            bytes.extend(record(key, Some(&value)));
            tags.push(tag);
        }
        bytes.extend(record(Some(b"tombstone"), None));
        tags.push(SchemaTag::None);
        (bytes, tags)
    }

    fn read_cut(bytes: &[u8], cuts: &[usize]) -> Result<Vec<SchemaTag>, DecodeError> {
        let mut reader = RecordValues::new(bytes.len() as u64);
        let mut seen = Vec::new();
        let mut at = 0;
        for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let used = reader.feed(&bytes[at..end], &mut |t| seen.push(t))?;
            assert_eq!(used, end - at);
            at = end;
        }
        assert!(reader.is_done());
        Ok(seen)
    }

    #[test]
    fn each_value_is_tagged_whole_or_cut_anywhere() {
        let (bytes, tags) = sample();
        assert_eq!(read_cut(&bytes, &[]), Ok(tags.clone()));
        for cut in 0..=bytes.len() {
            assert_eq!(read_cut(&bytes, &[cut]), Ok(tags.clone()), "cut {cut}");
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(read_cut(&bytes, &every_byte), Ok(tags));
    }

    #[test]
    fn keys_and_the_rest_of_records_are_passed_over_unseen() {
        let (bytes, tags) = sample();
        let mut reader = RecordValues::new(bytes.len() as u64);
        let (mut seen, mut at, mut passed) = (Vec::new(), 0, 0);
        while !reader.is_done() {
            let skip = reader.skippable();
            if skip > 0 {
                passed += reader.pass_over(skip);
                at += skip as usize;
            } else {
                at += reader
                    .feed(&bytes[at..at + 1], &mut |t| seen.push(t))
                    .unwrap();
            }
        }
        assert_eq!((seen, at), (tags, bytes.len()));
        // The 300-byte key alone is over a third of the batch.
        assert!(
            passed > 300,
            "{passed} of {} bytes passed over",
            bytes.len()
        );
    }

    #[test]
    fn malformed_batches_are_errors_never_panics() {
        let (bytes, _) = sample();
        for len in 0..bytes.len() {
            // The section claims fewer bytes than its records take.
            let mut reader = RecordValues::new(len as u64);
            let result = reader.feed(&bytes, &mut |_| {});
            assert!(result.is_err() || reader.is_done(), "len {len}");
        }
        for at in 0..bytes.len() {
            for flip in [0x80, 0xff, 0x01] {
                let mut doctored = bytes.clone();
                doctored[at] ^= flip;
                let mut reader = RecordValues::new(doctored.len() as u64);
                let mut seen = 0;
                if let Ok(used) = reader.feed(&doctored, &mut |_| seen += 1) {
                    assert!(used <= doctored.len());
                    assert!(seen <= 6);
                }
            }
        }
        // A negative record length, a varint too long, a key past its record.
        let mut reader = RecordValues::new(10);
        assert_eq!(
            reader.feed(&[0x03], &mut |_| {}),
            Err(DecodeError::BadLength)
        );
        let mut reader = RecordValues::new(40);
        let long = [
            0x40, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(reader.feed(&long, &mut |_| {}), Err(DecodeError::BadVarint));
        let mut reader = RecordValues::new(20);
        let key_too_long = [0x08, 0, 0, 0, 0x40];
        assert_eq!(
            reader.feed(&key_too_long, &mut |_| {}),
            Err(DecodeError::BadRecordBatch)
        );
    }

    #[test]
    fn counts_fold_further_tags_into_other() {
        let mut counts = SchemaCounts::default();
        for (tag, n) in [
            (SchemaTag::Id(1), 2),
            (SchemaTag::None, 1),
            (SchemaTag::Id(1), 3),
            (SchemaTag::Id(2), 1),
            (SchemaTag::Id(3), 4),
            (SchemaTag::Id(4), 5),
            (SchemaTag::Id(2), 1),
        ] {
            counts.add(tag, n);
        }
        let got: Vec<_> = counts.iter().collect();
        assert_eq!(
            got,
            vec![
                (SchemaTag::Id(1), 5),
                (SchemaTag::None, 1),
                (SchemaTag::Id(2), 2),
                (SchemaTag::Other, 9),
            ]
        );
        let total: u32 = got.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 17);
    }
}
