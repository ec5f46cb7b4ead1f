//! A streaming interpreter of [`schema`](super::schema) layouts.
//!
//! Hand-written on purpose: this is the hot path of the sidecar. It is zero-copy and
//! resumable at any byte: input arrives in chunks of any size, fields are reported to a
//! [`Visitor`] as soon as they are complete, and skipped data (record payloads, unused
//! strings) is never copied. Its whole memory is a fixed stack and a 256-byte carry for a
//! token split across chunks, whatever the message size. It never panics: a malformed
//! message yields a [`DecodeError`].

use super::big_endian::be_int;
use super::error::DecodeError;
use super::records::{BatchHeader, Codec, ENTRY_PREFIX, V2_HEADER_REST};
use super::schema::{Field, Layout, Role, Ty};
use super::schema_ids::{RecordValues, SchemaTag, READ_SIZE};

/// The deepest nesting in any layout (ShareFetch request: message > topics > partitions >
/// acknowledgement batches > their types) plus headroom.
const MAX_DEPTH: usize = 6;
/// Longest string value reported to a visitor (Kafka topic names are at most 249 bytes);
/// longer values are reported truncated.
pub const MAX_CAPTURE: usize = 255;
const CARRY: usize = 256;

/// Receives decoded fields. Array elements are bracketed by `begin`/`end` with the role of
/// the array field. Only fields whose role is not [`Role::Skip`] are reported.
pub trait Visitor {
    fn begin(&mut self, _array: Role) {}
    fn end(&mut self, _array: Role) {}
    fn int(&mut self, _role: Role, _value: i64) {}
    /// A string value (`None` for null), truncated to [`MAX_CAPTURE`] bytes.
    fn str(&mut self, _role: Role, _value: Option<&[u8]>) {}
    fn uuid(&mut self, _role: Role, _value: [u8; 16]) {}
    /// A complete record batch inside a records field.
    fn batch(&mut self, _batch: &BatchHeader) {}
    /// `records` records whose values carry `tag` (only when the walker reads values).
    fn schema(&mut self, _tag: SchemaTag, _records: u32) {}
}

/// A visitor that wants nothing.
impl Visitor for () {}

#[derive(Clone, Copy)]
struct Level {
    fields: &'static [Field],
    /// Index of the field being read, or the next one to read.
    next: usize,
    /// Elements of this array still to read, including the current one (1 at the top).
    left: u32,
    /// Role of the array this level walks (`Skip` at the top).
    role: Role,
    /// Elements are bare values, without tagged fields of their own.
    packed: bool,
}

/// What the bytes being gathered are for.
#[derive(Clone, Copy)]
enum Pending {
    /// The value of a fixed-width field.
    Value(Field),
    /// The length of a string, bytes, records or array field.
    Len(Field),
    /// The number of tagged fields of a header (`header`) or at the end of a struct.
    TagCount {
        header: bool,
    },
    /// A tagged field's tag, then its size; `left` counts this field and those after it.
    TagId {
        left: u32,
        header: bool,
    },
    TagSize {
        left: u32,
        header: bool,
    },
    /// The first bytes of a record-set entry (offset, length, epoch/crc, magic) in a
    /// records field with `left` bytes to go from the entry's start.
    EntryPrefix {
        left: u64,
    },
    /// The rest of a v2 batch header; `left` counts from the entry's start.
    BatchRest {
        base_offset: i64,
        batch_length: i32,
        left: u64,
    },
}

/// What follows a skip.
#[derive(Clone, Copy)]
enum Then {
    FieldDone,
    Tagged { left: u32, header: bool },
    Records { left: u64 },
}

#[derive(Clone, Copy)]
enum Step {
    /// Decide what the next field of the current level needs (consumes nothing).
    Next,
    /// Gather exactly `n` bytes into the carry.
    Gather { n: usize, pending: Pending },
    /// Gather an unsigned varint.
    Varint {
        pending: Pending,
        value: u32,
        shift: u32,
    },
    /// Step over `n` bytes.
    Skip { n: u64, then: Then },
    /// A string body of `len` bytes, reported for `role` (captured up to MAX_CAPTURE).
    Text { role: Role, len: u32 },
    /// At an entry boundary inside a records field with `left` bytes to go (consumes
    /// nothing).
    Records { left: u64 },
    /// Inside an uncompressed batch's records, read by `values`; `left` bytes of the
    /// records field follow the batch.
    Values { left: u64 },
    /// The message is complete.
    Done,
}

pub struct Walker {
    stack: [Level; MAX_DEPTH],
    depth: usize,
    version: i16,
    flexible: bool,
    step: Step,
    carry: [u8; CARRY],
    have: usize,
    /// Whether v2 batches' record values are read for their schema ids.
    read_values: bool,
    values: RecordValues,
}

impl Walker {
    /// A walker over `fields` at `version`. With `header_tags`, the walk starts with the
    /// tagged fields of a flexible request (v2) or response (v1) header.
    pub fn new(fields: &'static [Field], version: i16, flexible: bool, header_tags: bool) -> Self {
        let top = Level {
            fields,
            next: 0,
            left: 1,
            role: Role::Skip,
            packed: false,
        };
        let step = if header_tags {
            varint(Pending::TagCount { header: true })
        } else {
            Step::Next
        };
        Walker {
            stack: [top; MAX_DEPTH],
            depth: 1,
            version,
            flexible,
            step,
            carry: [0; CARRY],
            have: 0,
            read_values: false,
            values: RecordValues::new(0),
        }
    }

    /// Also read each record value's schema id in v2 batches ([`Visitor::schema`]):
    /// uncompressed batches record by record, compressed ones counted as such unread.
    pub fn reading_record_values(mut self) -> Self {
        self.read_values = true;
        self
    }

    pub fn for_layout(layout: &Layout, version: i16, header_tags: bool) -> Self {
        Self::new(
            layout.fields,
            version,
            layout.is_flexible(version),
            header_tags,
        )
    }

    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }

    /// Bytes from here on that the walker will step over without looking at them (the
    /// rest of a record batch, a string it does not report, a tagged field).
    pub fn skippable(&self) -> u64 {
        match self.step {
            Step::Skip { n, .. } => n,
            Step::Values { .. } => self.values.skippable(),
            _ => 0,
        }
    }

    /// How many bytes to read at once from here, when the walker has a size of its own
    /// (inside a batch read record by record: [`READ_SIZE`]); `None`: the reader's window.
    pub fn read_size(&self) -> Option<u64> {
        match self.step {
            Step::Values { .. } => Some(READ_SIZE),
            _ => None,
        }
    }

    /// Step over `n` bytes, at most [`skippable`](Self::skippable), without being given
    /// them: the host need not copy bytes nobody reads. Returns how many were passed.
    pub fn pass_over(&mut self, n: u64, visitor: &mut impl Visitor) -> Result<u64, DecodeError> {
        let passed = self.advance_skip(n, visitor);
        // Take the steps that need no bytes (end of a record set, of a struct), as
        // `feed` does after a skip, so a message that ends here is done.
        self.feed(&[], visitor)?;
        Ok(passed)
    }

    fn advance_skip(&mut self, n: u64, visitor: &mut impl Visitor) -> u64 {
        let (left, then) = match self.step {
            Step::Skip { n, then } => (n, then),
            Step::Values { .. } => return self.values.pass_over(n),
            _ => return 0,
        };
        let take = n.min(left);
        if take == left {
            self.then(then, visitor);
        } else {
            self.step = Step::Skip {
                n: left - take,
                then,
            };
        }
        take
    }

    /// Feed the next chunk. Returns how many bytes were consumed: all of `input`, or fewer
    /// when the message ended inside it.
    pub fn feed(&mut self, input: &[u8], visitor: &mut impl Visitor) -> Result<usize, DecodeError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.step {
                Step::Done => return Ok(pos),
                Step::Next => self.next_field(visitor)?,
                Step::Records { left } => self.next_entry(left),
                Step::Values { left } if self.values.is_done() => {
                    self.step = Step::Records { left }
                }
                _ if rest.is_empty() => return Ok(pos),
                Step::Values { .. } => {
                    pos += self.values.feed(rest, &mut |tag| visitor.schema(tag, 1))?
                }
                Step::Gather { n, pending } => {
                    let take = (n - self.have).min(rest.len());
                    self.carry[self.have..self.have + take].copy_from_slice(&rest[..take]);
                    self.have += take;
                    pos += take;
                    if self.have == n {
                        self.have = 0;
                        self.gathered(n, pending, visitor)?;
                    }
                }
                Step::Varint {
                    pending,
                    value,
                    shift,
                } => {
                    let byte = rest[0];
                    pos += 1;
                    let value = value | (u32::from(byte & 0x7f) << shift);
                    if byte & 0x80 == 0 {
                        self.varint_done(value, pending, visitor)?;
                    } else if shift >= 28 {
                        return Err(DecodeError::BadVarint);
                    } else {
                        self.step = Step::Varint {
                            pending,
                            value,
                            shift: shift + 7,
                        };
                    }
                }
                Step::Skip { .. } => pos += self.advance_skip(rest.len() as u64, visitor) as usize,
                Step::Text { role, len } => {
                    let take = (len as usize - self.have).min(rest.len());
                    // `have` counts the whole string so far, which may be past the
                    // carry: only a string's first MAX_CAPTURE bytes are kept.
                    let keep = MAX_CAPTURE.saturating_sub(self.have).min(take);
                    if keep > 0 {
                        self.carry[self.have..self.have + keep].copy_from_slice(&rest[..keep]);
                    }
                    self.have += take;
                    pos += take;
                    if self.have == len as usize {
                        let kept = self.have.min(MAX_CAPTURE);
                        self.have = 0;
                        visitor.str(role, Some(&self.carry[..kept]));
                        self.field_done();
                    }
                }
            }
        }
    }

    fn top(&mut self) -> &mut Level {
        &mut self.stack[self.depth - 1]
    }

    /// Choose the step for the next field of the current level, or close the struct.
    fn next_field(&mut self, visitor: &mut impl Visitor) -> Result<(), DecodeError> {
        let version = self.version;
        let level = *self.top();
        let present = level.fields[level.next..]
            .iter()
            .position(|f| f.present_in(version));
        let Some(offset) = present else {
            self.top().next = level.fields.len();
            if self.flexible && !level.packed {
                self.step = varint(Pending::TagCount { header: false });
            } else {
                self.struct_done(visitor);
            }
            return Ok(());
        };
        let field = level.fields[level.next + offset];
        self.top().next += offset;
        if let Ty::Struct(fields) = field.ty {
            return self.enter(fields, 1, field.role, false, visitor);
        }
        self.step = match field.ty.fixed_size() {
            Some(n) => Step::Gather {
                n,
                pending: Pending::Value(field),
            },
            None if self.flexible && !matches!(field.ty, Ty::LegacyStr) => {
                varint(Pending::Len(field))
            }
            None => Step::Gather {
                n: if matches!(field.ty, Ty::Str | Ty::LegacyStr) {
                    2
                } else {
                    4
                },
                pending: Pending::Len(field),
            },
        };
        Ok(())
    }

    fn field_done(&mut self) {
        self.top().next += 1;
        self.step = Step::Next;
    }

    /// A struct's fields and tagged fields are read: next element, or back to the parent.
    fn struct_done(&mut self, visitor: &mut impl Visitor) {
        if self.depth == 1 {
            self.step = Step::Done;
            return;
        }
        let level = self.top();
        let role = level.role;
        level.left -= 1;
        visitor.end(role);
        if level.left > 0 {
            level.next = 0;
            visitor.begin(role);
            self.step = Step::Next;
        } else {
            self.depth -= 1;
            self.field_done();
        }
    }

    fn then(&mut self, then: Then, visitor: &mut impl Visitor) {
        match then {
            Then::FieldDone => self.field_done(),
            Then::Tagged { left, header } => self.tagged(left, header, visitor),
            Then::Records { left } => self.step = Step::Records { left },
        }
    }

    fn skip(&mut self, n: u64, then: Then, visitor: &mut impl Visitor) {
        if n == 0 {
            self.then(then, visitor);
        } else {
            self.step = Step::Skip { n, then };
        }
    }

    /// `left` tagged fields remain in a section (they are skipped: no tagged field
    /// carries anything the observers use).
    fn tagged(&mut self, left: u32, header: bool, visitor: &mut impl Visitor) {
        if left > 0 {
            self.step = varint(Pending::TagId { left, header });
        } else if header {
            self.step = Step::Next;
        } else {
            self.struct_done(visitor);
        }
    }

    /// The length of a variable-size field is known (-1: null).
    fn length(
        &mut self,
        field: Field,
        len: i64,
        visitor: &mut impl Visitor,
    ) -> Result<(), DecodeError> {
        if len < -1 {
            return Err(DecodeError::BadLength);
        }
        let n = len.max(0) as u64;
        match field.ty {
            Ty::Str | Ty::LegacyStr if field.role != Role::Skip && len >= 0 => {
                if len == 0 {
                    visitor.str(field.role, Some(&[]));
                    self.field_done();
                } else {
                    self.step = Step::Text {
                        role: field.role,
                        len: n as u32,
                    };
                }
            }
            Ty::Str | Ty::LegacyStr => {
                if field.role != Role::Skip {
                    visitor.str(field.role, None);
                }
                self.skip(n, Then::FieldDone, visitor);
            }
            Ty::Records => self.step = Step::Records { left: n },
            Ty::I32Array => self.skip(n.saturating_mul(4), Then::FieldDone, visitor),
            Ty::Array(fields) if n > 0 => {
                let left = n.min(u64::from(u32::MAX)) as u32;
                return self.enter(fields, left, field.role, false, visitor);
            }
            Ty::PackedArray(element) if n > 0 => {
                let left = n.min(u64::from(u32::MAX)) as u32;
                return self.enter(
                    std::slice::from_ref(element),
                    left,
                    field.role,
                    true,
                    visitor,
                );
            }
            _ => self.skip(n, Then::FieldDone, visitor),
        }
        Ok(())
    }

    /// Walk `left` elements of `fields` (an array's, or one for an inline struct).
    fn enter(
        &mut self,
        fields: &'static [Field],
        left: u32,
        role: Role,
        packed: bool,
        visitor: &mut impl Visitor,
    ) -> Result<(), DecodeError> {
        if self.depth == MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        self.stack[self.depth] = Level {
            fields,
            next: 0,
            left,
            role,
            packed,
        };
        self.depth += 1;
        visitor.begin(role);
        self.step = Step::Next;
        Ok(())
    }

    /// At an entry boundary of a records field.
    fn next_entry(&mut self, left: u64) {
        self.step = if left == 0 {
            self.top().next += 1;
            Step::Next
        } else if left < ENTRY_PREFIX as u64 {
            // A partial entry: brokers cut the last batch of a fetch response short.
            Step::Skip {
                n: left,
                then: Then::FieldDone,
            }
        } else {
            Step::Gather {
                n: ENTRY_PREFIX,
                pending: Pending::EntryPrefix { left },
            }
        };
    }

    fn gathered(
        &mut self,
        n: usize,
        pending: Pending,
        visitor: &mut impl Visitor,
    ) -> Result<(), DecodeError> {
        let bytes = &self.carry[..n];
        match pending {
            Pending::Value(field) => {
                if field.role != Role::Skip {
                    match field.ty {
                        Ty::Uuid => {
                            let mut id = [0u8; 16];
                            id.copy_from_slice(bytes);
                            visitor.uuid(field.role, id);
                        }
                        _ => visitor.int(field.role, be_int(bytes)),
                    }
                }
                self.field_done();
            }
            Pending::Len(field) => {
                let len = be_int(bytes);
                self.length(field, len, visitor)?;
            }
            Pending::EntryPrefix { left } => {
                let base_offset = be_int(&bytes[0..8]);
                let length = be_int(&bytes[8..12]);
                let magic = bytes[16];
                let entry = 12 + length.max(0) as u64;
                let after_prefix = left - ENTRY_PREFIX as u64;
                // An entry shorter than the prefix just read cannot be a message.
                if length < 0 || entry < ENTRY_PREFIX as u64 {
                    return Err(DecodeError::BadRecordBatch);
                }
                if entry > left {
                    // Partial last entry (fetch responses are cut at the size limit).
                    self.skip(after_prefix, Then::FieldDone, visitor);
                } else if magic >= 2 {
                    if entry < (ENTRY_PREFIX + V2_HEADER_REST) as u64 {
                        return Err(DecodeError::BadRecordBatch);
                    }
                    self.step = Step::Gather {
                        n: V2_HEADER_REST,
                        pending: Pending::BatchRest {
                            base_offset,
                            batch_length: length as i32,
                            left,
                        },
                    };
                } else {
                    visitor.batch(&BatchHeader::legacy(base_offset, entry, magic));
                    let then = Then::Records { left: left - entry };
                    self.skip(entry - ENTRY_PREFIX as u64, then, visitor);
                }
            }
            Pending::BatchRest {
                base_offset,
                batch_length,
                left,
            } => {
                let header = BatchHeader::v2(base_offset, batch_length, bytes);
                visitor.batch(&header);
                let entry = header.size;
                let records = entry - (ENTRY_PREFIX + V2_HEADER_REST) as u64;
                let left = left - entry;
                if self.read_values && !header.control {
                    if header.codec == Codec::None {
                        self.values = RecordValues::new(records);
                        self.step = Step::Values { left };
                        return Ok(());
                    }
                    visitor.schema(SchemaTag::Compressed, header.records);
                }
                self.skip(records, Then::Records { left }, visitor);
            }
            // Varint-only states are never gathered; treat as a malformed message.
            Pending::TagCount { .. } | Pending::TagId { .. } | Pending::TagSize { .. } => {
                return Err(DecodeError::Truncated)
            }
        }
        Ok(())
    }

    fn varint_done(
        &mut self,
        value: u32,
        pending: Pending,
        visitor: &mut impl Visitor,
    ) -> Result<(), DecodeError> {
        match pending {
            // Compact lengths are stored plus one; 0 is null.
            Pending::Len(field) => return self.length(field, i64::from(value) - 1, visitor),
            Pending::TagCount { header } => self.tagged(value, header, visitor),
            Pending::TagId { left, header } => {
                self.step = varint(Pending::TagSize { left, header })
            }
            Pending::TagSize { left, header } => {
                let then = Then::Tagged {
                    left: left - 1,
                    header,
                };
                self.skip(u64::from(value), then, visitor);
            }
            // Fixed-width states are never read as varints; treat as a malformed message.
            Pending::Value(_) | Pending::EntryPrefix { .. } | Pending::BatchRest { .. } => {
                return Err(DecodeError::BadVarint)
            }
        }
        Ok(())
    }
}

const fn varint(pending: Pending) -> Step {
    Step::Varint {
        pending,
        value: 0,
        shift: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::kafka::schema::REQUEST_HEADER;

    #[derive(Default)]
    struct Seen(Vec<Option<Vec<u8>>>);

    impl Visitor for Seen {
        fn str(&mut self, _role: Role, value: Option<&[u8]>) {
            self.0.push(value.map(<[u8]>::to_vec));
        }
    }

    /// A reported string longer than the carry, arriving in chunks: once more than
    /// CARRY bytes of it were seen, the next chunk used to index past the carry (a panic,
    /// found by the on_buffer property test in tests/recorded.rs).
    #[test]
    fn a_long_string_split_after_the_carry_is_captured_truncated() {
        let client_id = vec![b'c'; 600];
        let mut header = vec![0, 0, 0, 9, 0, 0, 0, 7];
        header.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        header.extend_from_slice(&client_id);
        for cut in [1, 11, 200, 266, 267, 268, 300, 400, header.len() - 1] {
            let mut walker = Walker::new(REQUEST_HEADER, 0, false, false);
            let mut seen = Seen::default();
            let (a, b) = header.split_at(cut);
            assert_eq!(walker.feed(a, &mut seen), Ok(a.len()), "cut {cut}");
            assert_eq!(walker.feed(b, &mut seen), Ok(b.len()), "cut {cut}");
            assert!(walker.is_done(), "cut {cut}");
            assert_eq!(
                seen.0,
                vec![Some(client_id[..MAX_CAPTURE].to_vec())],
                "cut {cut}"
            );
        }
    }
}
