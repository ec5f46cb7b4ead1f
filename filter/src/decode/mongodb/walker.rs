//! The streaming walker of one MongoDB message and the summary it builds.

use super::error::DecodeError;
use super::tables::*;

/// Up to `N` bytes of a name or string value; `whole` is false when it was longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture<const N: usize> {
    bytes: [u8; N],
    len: usize,
    whole: bool,
}

impl<const N: usize> Default for Capture<N> {
    fn default() -> Self {
        Capture {
            bytes: [0; N],
            len: 0,
            whole: true,
        }
    }
}

impl<const N: usize> Capture<N> {
    fn push(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(N - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self.whole &= take == bytes.len();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether the whole value fit.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Longest element name read: longer names are none the filter looks for.
const NAME_BYTES: usize = 32;
/// Longest database and collection names kept (MongoDB allows a 255-byte namespace; a
/// longer one is reported cut, as a label value it is capped anyway).
pub const NAMESPACE_BYTES: usize = 120;

/// What a message said, as far as the filter reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
    /// A request's command, its first element's name: one of [`COMMANDS`], [`OTHER`],
    /// [`COMPRESSED`] or [`UNKNOWN_OPCODE`].
    pub command: Option<&'static str>,
    /// The database (`$db`, or OP_QUERY's namespace before its dot).
    pub database: Capture<NAMESPACE_BYTES>,
    /// The collection: the command's string value, or getMore's `collection`.
    pub collection: Capture<NAMESPACE_BYTES>,
    /// A reply's `ok`.
    pub ok: Option<bool>,
    /// A reply's `code`.
    pub code: Option<i32>,
}

/// What the bytes being read are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// requestID, responseTo, opCode.
    Header,
    MsgFlags,
    SectionKind,
    SequenceSize,
    QueryFlags,
    QueryNamespace,
    QueryNumbers,
    ReplyFields,
    DocumentSize,
    ElementType,
    ElementName,
    /// A fixed-size value the filter reads (`ok`, `code`).
    Number(u8),
    /// A string's length; the string is kept when `keep` (see [`Keep`]).
    StringLength(Keep),
    /// The length of an embedded document, array or code-with-scope (counting itself).
    NestedLength,
    BinaryLength,
    /// A regular expression: two C strings.
    Regex(u8),
    DbPointerLength,
}

/// Where a string value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    Nothing,
    Collection,
    Database,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading `need` bytes of `field` into the scratch.
    Fixed {
        field: Field,
        need: u8,
        have: u8,
    },
    /// Reading a NUL-terminated string.
    CString(Field),
    /// Reading `left` bytes of a string value, kept or not.
    Body {
        keep: Keep,
        left: u32,
    },
    /// Stepping over `left` bytes, then reading the next element (or section).
    Skip {
        left: u32,
    },
    /// The rest of the message is not read.
    Rest,
    Failed,
}

/// Walks one message (the bytes after its length prefix), fed in chunks of any size.
#[derive(Clone, Debug)]
pub struct Walker {
    direction_request: bool,
    state: State,
    /// Message bytes not yet consumed.
    left: u32,
    scratch: [u8; 20],
    name: Capture<NAME_BYTES>,
    /// Top-level elements of the command document read so far.
    elements: u32,
    /// OP_MSG flagBits.
    flags: u32,
    checksum: bool,
    in_message_document: bool,
    /// OP_QUERY: the namespace's dot was read (the database name is complete).
    at_dot: bool,
    pub summary: Summary,
}

impl Walker {
    /// A walker for one message of `size` bytes after the length prefix, going to the
    /// server (`request`) or back.
    pub fn new(request: bool, size: u32) -> Walker {
        let mut walker = Walker {
            direction_request: request,
            state: State::Rest,
            left: size,
            scratch: [0; 20],
            name: Capture::default(),
            elements: 0,
            flags: 0,
            checksum: false,
            in_message_document: false,
            at_dot: false,
            summary: Summary::default(),
        };
        walker.fixed(Field::Header, 12);
        walker
    }

    /// Whether the message was read to its end without error.
    pub fn is_done(&self) -> bool {
        self.left == 0 && !matches!(self.state, State::Failed)
    }

    /// The OP_MSG flagBits (0 for other opcodes).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    pub fn failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Bytes from here on that the walker would step over without looking at them.
    pub fn skippable(&self) -> u32 {
        match self.state {
            State::Skip { left } => left,
            State::Body {
                keep: Keep::Nothing,
                left,
            } => left,
            State::Rest | State::Failed => self.left,
            _ => 0,
        }
    }

    /// Step over `n` bytes (at most [`skippable`](Self::skippable)) unseen.
    pub fn pass_over(&mut self, n: u32) -> Result<(), DecodeError> {
        let n = n.min(self.skippable());
        self.left -= n;
        match &mut self.state {
            State::Skip { left }
            | State::Body {
                keep: Keep::Nothing,
                left,
            } => {
                *left -= n;
                if *left == 0 {
                    self.next_element();
                }
            }
            _ => {}
        }
        self.check_end()
    }

    /// Feed message bytes; returns how many were used (all of them, up to the message's
    /// end). After an error the rest of the message is stepped over.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<usize, DecodeError> {
        bytes = &bytes[..bytes.len().min(self.left as usize)];
        let within = bytes.len();
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Rest | State::Failed => bytes.len(),
                State::Skip { left } => {
                    let take = (*left as usize).min(bytes.len());
                    *left -= take as u32;
                    if *left == 0 {
                        self.left -= take as u32;
                        bytes = &bytes[take..];
                        self.next_element();
                        continue;
                    }
                    take
                }
                State::Body { keep, left } => {
                    let take = (*left as usize).min(bytes.len());
                    // The stored length counts the terminating NUL: keep what precedes it.
                    let text = &bytes[..take.min((*left as usize).saturating_sub(1))];
                    match keep {
                        Keep::Collection => self.summary.collection.push(text),
                        Keep::Database => self.summary.database.push(text),
                        Keep::Nothing => {}
                    }
                    *left -= take as u32;
                    if *left == 0 {
                        self.left -= take as u32;
                        bytes = &bytes[take..];
                        self.next_element();
                        continue;
                    }
                    take
                }
                State::Fixed { field, need, have } => {
                    let (field, need) = (*field, *need);
                    let take = usize::from(need - *have).min(bytes.len());
                    let at = usize::from(*have);
                    self.scratch[at..at + take].copy_from_slice(&bytes[..take]);
                    *have += take as u8;
                    if *have == need {
                        self.left -= take as u32;
                        bytes = &bytes[take..];
                        if let Err(e) = self.on_fixed(field) {
                            return self.fail(e);
                        }
                        continue;
                    }
                    take
                }
                State::CString(field) => {
                    let field = *field;
                    match bytes.iter().position(|&b| b == 0) {
                        Some(end) => {
                            self.on_cstring_bytes(field, &bytes[..end]);
                            self.left -= end as u32 + 1;
                            bytes = &bytes[end + 1..];
                            if let Err(e) = self.on_cstring(field) {
                                return self.fail(e);
                            }
                            continue;
                        }
                        None => {
                            self.on_cstring_bytes(field, bytes);
                            bytes.len()
                        }
                    }
                }
            };
            self.left -= used as u32;
            bytes = &bytes[used..];
        }
        self.check_end()?;
        Ok(within)
    }

    fn fail(&mut self, error: DecodeError) -> Result<usize, DecodeError> {
        self.state = State::Failed;
        Err(error)
    }

    /// At the message's end, the walker must be between fields.
    fn check_end(&mut self) -> Result<(), DecodeError> {
        if self.left > 0 {
            return Ok(());
        }
        match self.state {
            State::Rest | State::Failed => Ok(()),
            // The message ended where a section or (OP_MSG) the next element would start.
            State::Fixed {
                field: Field::SectionKind,
                have: 0,
                ..
            } => {
                self.state = State::Rest;
                Ok(())
            }
            _ => {
                self.state = State::Failed;
                Err(DecodeError::Truncated)
            }
        }
    }

    fn fixed(&mut self, field: Field, need: u8) {
        self.state = State::Fixed {
            field,
            need,
            have: 0,
        };
        if need == 0 {
            self.next_element();
        }
    }

    fn skip(&mut self, n: u32) -> Result<(), DecodeError> {
        if n > self.left {
            return Err(DecodeError::BadLength);
        }
        self.state = State::Skip { left: n };
        if n == 0 {
            self.next_element();
        }
        Ok(())
    }

    fn i32_at(&self, at: usize) -> i32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.scratch[at..at + 4]);
        i32::from_le_bytes(b)
    }

    /// A length field, checked against what is left of the message.
    fn length(&self, min: i32) -> Result<u32, DecodeError> {
        let n = self.i32_at(0);
        u32::try_from(n)
            .ok()
            .filter(|&n| n as i64 >= i64::from(min) && n <= self.left.saturating_add(4))
            .ok_or(DecodeError::BadLength)
    }

    fn on_fixed(&mut self, field: Field) -> Result<(), DecodeError> {
        match field {
            Field::Header => {
                self.summary.request_id = self.i32_at(0);
                self.summary.response_to = self.i32_at(4);
                self.summary.op_code = self.i32_at(8);
                match self.summary.op_code {
                    OP_MSG => self.fixed(Field::MsgFlags, 4),
                    OP_QUERY => self.fixed(Field::QueryFlags, 4),
                    OP_REPLY => self.fixed(Field::ReplyFields, 20),
                    op => {
                        if self.direction_request {
                            let name = if op == OP_COMPRESSED {
                                COMPRESSED
                            } else {
                                UNKNOWN_OPCODE
                            };
                            self.summary.command = Some(name);
                        }
                        self.state = State::Rest;
                    }
                }
            }
            Field::MsgFlags => {
                self.flags = self.i32_at(0) as u32;
                self.checksum = self.flags & CHECKSUM_PRESENT != 0;
                self.section();
            }
            Field::SectionKind => match self.scratch[0] {
                0 => self.document(),
                1 => self.fixed(Field::SequenceSize, 4),
                _ => return Err(DecodeError::BadSection),
            },
            Field::SequenceSize => {
                let size = self.length(4)?;
                self.skip(size - 4)?;
            }
            Field::QueryFlags => self.state = State::CString(Field::QueryNamespace),
            Field::QueryNumbers => self.document(),
            Field::ReplyFields => self.document(),
            Field::DocumentSize => {
                self.length(5)?;
                self.in_message_document = true;
                self.fixed(Field::ElementType, 1);
            }
            Field::ElementType => {
                if self.scratch[0] == 0 {
                    // The command document ended.
                    self.in_message_document = false;
                    if self.summary.op_code == OP_MSG {
                        self.section();
                    } else {
                        self.state = State::Rest;
                    }
                } else {
                    self.name = Capture::default();
                    self.state = State::CString(Field::ElementName);
                }
            }
            Field::Number(kind) => {
                let mut eight = [0; 8];
                eight.copy_from_slice(&self.scratch[..8]);
                let value = match kind {
                    0x01 => Some(f64::from_le_bytes(eight)),
                    0x10 => Some(f64::from(self.i32_at(0))),
                    0x12 => Some(i64::from_le_bytes(eight) as f64),
                    0x08 => Some(f64::from(self.scratch[0])),
                    _ => None,
                };
                match (self.name.as_bytes(), value) {
                    (b"ok", Some(v)) => self.summary.ok = Some(v != 0.0),
                    (b"code", Some(v)) => self.summary.code = Some(v as i32),
                    _ => {}
                }
                self.next_element();
            }
            Field::StringLength(keep) => {
                let n = self.length(1)?;
                if n > self.left {
                    return Err(DecodeError::BadLength);
                }
                self.state = State::Body { keep, left: n };
                if n == 0 {
                    self.next_element();
                }
            }
            Field::NestedLength => {
                let n = self.length(5)?;
                self.skip(n - 4)?;
            }
            Field::BinaryLength => {
                let n = self.length(0)?;
                self.skip(n.checked_add(1).ok_or(DecodeError::BadLength)?)?;
            }
            Field::DbPointerLength => {
                let n = self.length(1)?;
                self.skip(n.checked_add(12).ok_or(DecodeError::BadLength)?)?;
            }
            Field::QueryNamespace | Field::ElementName | Field::Regex(_) => {}
        }
        Ok(())
    }

    fn on_cstring_bytes(&mut self, field: Field, bytes: &[u8]) {
        match field {
            Field::ElementName => self.name.push(bytes),
            Field::QueryNamespace if self.summary.database.is_whole() && !self.at_dot => {
                let (db, dot) = match bytes.iter().position(|&b| b == b'.') {
                    Some(i) => (&bytes[..i], true),
                    None => (bytes, false),
                };
                self.summary.database.push(db);
                self.at_dot |= dot;
            }
            _ => {}
        }
    }

    fn on_cstring(&mut self, field: Field) -> Result<(), DecodeError> {
        match field {
            Field::QueryNamespace => self.fixed(Field::QueryNumbers, 8),
            Field::ElementName => self.value()?,
            Field::Regex(0) => self.state = State::CString(Field::Regex(1)),
            _ => self.next_element(),
        }
        Ok(())
    }

    fn section(&mut self) {
        let trailer = if self.checksum { 4 } else { 0 };
        if self.left <= trailer {
            self.state = State::Rest;
        } else {
            self.fixed(Field::SectionKind, 1);
        }
    }

    fn document(&mut self) {
        self.fixed(Field::DocumentSize, 4);
    }

    /// After a value: the next element of the command document, or the next section.
    fn next_element(&mut self) {
        if self.in_message_document {
            self.fixed(Field::ElementType, 1);
        } else if self.summary.op_code == OP_MSG {
            self.section();
        } else {
            self.state = State::Rest;
        }
    }

    /// The element whose type is in the scratch and whose name was just read.
    fn value(&mut self) -> Result<(), DecodeError> {
        let first = self.elements == 0;
        self.elements += 1;
        if first && self.direction_request {
            let name = self.name.as_bytes();
            let known = COMMANDS.iter().find(|c| c.as_bytes() == name);
            self.summary.command = Some(known.copied().unwrap_or(OTHER));
        }
        let kind = self.scratch[0];
        let keep = match self.name.as_bytes() {
            _ if !self.direction_request => Keep::Nothing,
            _ if first => Keep::Collection,
            b"$db" => Keep::Database,
            b"collection" if self.summary.command == Some("getMore") => Keep::Collection,
            _ => Keep::Nothing,
        };
        let wanted = !self.direction_request && matches!(self.name.as_bytes(), b"ok" | b"code");
        match kind {
            0x01 | 0x09 | 0x11 | 0x12 => self.number(wanted, kind, 8)?,
            0x10 => self.number(wanted, kind, 4)?,
            0x08 => self.number(wanted, kind, 1)?,
            0x07 => self.skip(12)?,
            0x13 => self.skip(16)?,
            0x06 | 0x0A | 0x7F | 0xFF => self.next_element(),
            0x02 | 0x0D | 0x0E => self.fixed(Field::StringLength(keep), 4),
            0x03 | 0x04 | 0x0F => self.fixed(Field::NestedLength, 4),
            0x05 => self.fixed(Field::BinaryLength, 4),
            0x0B => self.state = State::CString(Field::Regex(0)),
            0x0C => self.fixed(Field::DbPointerLength, 4),
            _ => return Err(DecodeError::BadType),
        }
        Ok(())
    }

    fn number(&mut self, wanted: bool, kind: u8, size: u8) -> Result<(), DecodeError> {
        if wanted && kind != 0x09 && kind != 0x11 {
            self.fixed(Field::Number(kind), size);
            Ok(())
        } else {
            self.skip(u32::from(size))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::mongodb::test_messages::*;
    use bson::{doc, Binary, Document};

    /// Walk one whole message split at `cut`, the way the framer hands it over.
    fn walk(message: &[u8], request: bool, cut: usize) -> Result<Summary, DecodeError> {
        let body = &message[4..];
        let mut walker = Walker::new(request, body.len() as u32);
        let cut = cut.min(body.len());
        for chunk in [&body[..cut], &body[cut..]] {
            walker.feed(chunk)?;
        }
        assert!(walker.is_done(), "not at the end");
        Ok(walker.summary)
    }

    /// Walk with every byte the walker would skip passed over unseen, one byte a feed.
    fn walk_skipping(message: &[u8], request: bool) -> Summary {
        let body = &message[4..];
        let mut walker = Walker::new(request, body.len() as u32);
        let mut at = 0;
        while at < body.len() {
            let skip = walker.skippable().min((body.len() - at) as u32);
            if skip > 0 {
                walker.pass_over(skip).unwrap();
                at += skip as usize;
            } else {
                at += walker.feed(&body[at..at + 1]).unwrap();
            }
        }
        assert!(walker.is_done());
        walker.summary
    }

    fn insert() -> Vec<u8> {
        let docs: Vec<Document> = (0..3)
            .map(|i| doc! { "_id": i, "value": "x".repeat(100), "nested": { "a": [1, 2] } })
            .collect();
        let body = doc! {
            "insert": "events.mirror",
            "ordered": true,
            "lsid": { "id": Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] } },
            "$db": "pipeline",
        };
        op_msg(41, 0, &body, Some(("documents", &docs)), false)
    }

    #[test]
    fn a_request_names_its_command_database_and_collection_at_every_cut() {
        let message = insert();
        for cut in 0..message.len() {
            let s = walk(&message, true, cut).unwrap();
            assert_eq!(s.request_id, 41);
            assert_eq!(s.op_code, OP_MSG);
            assert_eq!(s.command, Some("insert"));
            assert_eq!(s.collection.as_bytes(), b"events.mirror");
            assert_eq!(s.database.as_bytes(), b"pipeline", "cut {cut}");
        }
        let s = walk_skipping(&message, true);
        assert_eq!(
            (s.command, s.collection.as_bytes(), s.database.as_bytes()),
            (Some("insert"), &b"events.mirror"[..], &b"pipeline"[..])
        );
    }

    #[test]
    fn the_bytes_stepped_over_unseen_are_most_of_an_insert() {
        let message = insert();
        let body = &message[4..];
        let mut walker = Walker::new(true, body.len() as u32);
        let (mut seen, mut at) = (0, 0);
        while at < body.len() {
            let skip = walker.skippable().min((body.len() - at) as u32);
            if skip > 0 {
                walker.pass_over(skip).unwrap();
                at += skip as usize;
            } else {
                let used = walker.feed(&body[at..at + 1]).unwrap();
                (seen, at) = (seen + used, at + used);
            }
        }
        assert!(seen < 120, "{seen} of {} bytes read", body.len());
    }

    #[test]
    fn replies_say_ok_and_the_error_code() {
        let ok = op_msg(5, 41, &doc! { "n": 3, "ok": 1.0 }, None, false);
        let s = walk(&ok, false, 7).unwrap();
        assert_eq!(
            (s.response_to, s.ok, s.code, s.command),
            (41, Some(true), None, None)
        );
        let failed = doc! {
            "ok": 0.0, "errmsg": "auth failed", "code": 18, "codeName": "AuthenticationFailed",
        };
        for cut in 0..60 {
            let s = walk(&op_msg(6, 42, &failed, None, true), false, cut).unwrap();
            assert_eq!((s.ok, s.code), (Some(false), Some(18)));
        }
        let int_ok = op_reply(7, 1, &doc! { "ismaster": true, "ok": 1 });
        assert_eq!(walk(&int_ok, false, 3).unwrap().ok, Some(true));
        let long_ok = op_msg(
            8,
            2,
            &doc! { "cursor": { "firstBatch": [] }, "ok": 1i64 },
            None,
            false,
        );
        assert_eq!(walk_skipping(&long_ok, false).ok, Some(true));
    }

    #[test]
    fn legacy_queries_and_other_commands() {
        let hello = op_query(
            1,
            "admin.$cmd",
            &doc! { "isMaster": 1, "client": { "driver": "x" } },
        );
        let s = walk(&hello, true, 20).unwrap();
        assert_eq!(
            (s.command, s.database.as_bytes()),
            (Some("isMaster"), &b"admin"[..])
        );
        assert!(s.collection.is_empty());
        let odd = op_msg(2, 0, &doc! { "frobnicate": "c", "$db": "d" }, None, false);
        assert_eq!(walk(&odd, true, 0).unwrap().command, Some(OTHER));
        let get_more = doc! { "getMore": 12345i64, "collection": "events", "$db": "pipeline" };
        let s = walk(&op_msg(3, 0, &get_more, None, false), true, 9).unwrap();
        assert_eq!(
            (s.command, s.collection.as_bytes()),
            (Some("getMore"), &b"events"[..])
        );
        let mut compressed = op_msg(4, 0, &get_more, None, false);
        compressed[12..16].copy_from_slice(&OP_COMPRESSED.to_le_bytes());
        assert_eq!(
            walk(&compressed, true, 30).unwrap().command,
            Some(COMPRESSED)
        );
    }

    #[test]
    fn every_value_type_is_stepped_over() {
        let body = doc! {
            "find": "c",
            "d": 1.5, "s": "str", "o": { "x": 1 }, "a": [1, "2"],
            "b": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "u": bson::Bson::Undefined, "oid": bson::oid::ObjectId::from_bytes([1; 12]),
            "t": true, "dt": bson::DateTime::from_millis(5), "n": bson::Bson::Null,
            "re": bson::Regex { pattern: "a.*".into(), options: "i".into() },
            "js": bson::Bson::JavaScriptCode("f()".into()),
            "ts": bson::Timestamp { time: 1, increment: 2 }, "i": 7i64,
            "dec": bson::Decimal128::from_bytes([0; 16]),
            "min": bson::Bson::MinKey, "max": bson::Bson::MaxKey,
            "$db": "db",
        };
        let message = op_msg(9, 0, &body, None, false);
        for cut in 0..message.len() {
            let s = walk(&message, true, cut).unwrap();
            assert_eq!(
                (s.command, s.database.as_bytes()),
                (Some("find"), &b"db"[..])
            );
        }
    }

    #[test]
    fn malformed_messages_are_errors_never_panics() {
        let message = insert();
        // Any truncation of the body, declared as complete.
        for len in 0..message.len() - 4 {
            let body = &message[4..4 + len];
            let mut walker = Walker::new(true, len as u32);
            let _ = walker.feed(body);
        }
        // Every byte flipped.
        for i in 4..message.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut m = message.clone();
                m[i] = v;
                let mut walker = Walker::new(true, (m.len() - 4) as u32);
                let _ = walker.feed(&m[4..]);
            }
        }
        let mut bad = message.clone();
        bad[20] = 9; // section kind
        assert_eq!(walk(&bad, true, 0).unwrap_err(), DecodeError::BadSection);
        // A command document longer than its message.
        let mut cut = op_msg(1, 0, &doc! { "ping": 1 }, None, false);
        cut.truncate(cut.len() - 1);
        let mut walker = Walker::new(true, (cut.len() - 4) as u32);
        assert_eq!(walker.feed(&cut[4..]), Err(DecodeError::BadLength));
        // The message ends inside the document, its length field agreeing.
        cut[21] -= 1;
        let mut walker = Walker::new(true, (cut.len() - 4) as u32);
        assert_eq!(walker.feed(&cut[4..]), Err(DecodeError::Truncated));
    }

    #[test]
    fn long_names_are_cut_and_said_so() {
        let long = "c".repeat(300);
        let s = walk(
            &op_msg(1, 0, &doc! { "find": &long, "$db": "x" }, None, false),
            true,
            40,
        )
        .unwrap();
        assert_eq!(s.collection.as_bytes().len(), NAMESPACE_BYTES);
        assert!(!s.collection.is_whole());
        assert_eq!(s.database.as_bytes(), b"x");
    }
}
