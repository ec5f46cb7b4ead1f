//! Whole BSON documents held in memory (the filter's own authentication's small replies).

/// The top-level elements of a whole BSON document held in memory, as `(name, type,
/// value bytes)`; iteration ends at the document's end or at the first malformed element.
/// For the few small replies the filter keeps whole (its own authentication's); messages
/// streaming by go through [`Walker`](super::Walker), which never needs them whole.
pub fn elements(document: &[u8]) -> impl Iterator<Item = (&[u8], u8, &[u8])> {
    let declared = document.get(..4).map_or(0, |b| {
        i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize
    });
    let mut rest = document.get(4..declared.min(document.len())).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let (&kind, after) = rest.split_first()?;
        let name_end = after.iter().position(|&b| b == 0)?;
        let (name, value_at) = (&after[..name_end], &after[name_end + 1..]);
        let size = value_size(kind, value_at)?;
        let value = value_at.get(..size)?;
        rest = &value_at[size..];
        Some((name, kind, value))
    })
}

/// The byte length of a BSON value of `kind` starting `bytes` (None: malformed).
fn value_size(kind: u8, bytes: &[u8]) -> Option<usize> {
    let len = || -> Option<usize> {
        let b = bytes.get(..4)?;
        usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let cstring = |from: usize| {
        bytes
            .get(from..)?
            .iter()
            .position(|&b| b == 0)
            .map(|n| from + n + 1)
    };
    Some(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x10 => 4,
        0x08 => 1,
        0x07 => 12,
        0x13 => 16,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x02 | 0x0D | 0x0E => 4 + len()?,
        0x03 | 0x04 | 0x0F => len()?.max(5),
        0x05 => 5 + len()?,
        0x0B => cstring(cstring(0)?)?,
        0x0C => 16 + len()?,
        _ => return None,
    })
}

/// A BSON number (double, int32, int64) or boolean as f64.
pub fn number(kind: u8, value: &[u8]) -> Option<f64> {
    Some(match (kind, value.len()) {
        (0x01, 8) => f64::from_le_bytes(value.try_into().ok()?),
        (0x10, 4) => f64::from(i32::from_le_bytes(value.try_into().ok()?)),
        (0x12, 8) => i64::from_le_bytes(value.try_into().ok()?) as f64,
        (0x08, 1) => f64::from(value[0]),
        _ => return None,
    })
}

/// A BSON binary's bytes.
pub fn binary(kind: u8, value: &[u8]) -> Option<&[u8]> {
    (kind == 0x05).then(|| value.get(5..)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Binary};

    #[test]
    fn whole_documents_list_their_top_level_elements() {
        let doc = doc! {
            "conversationId": 1, "done": false,
            "payload": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: b"r=abc".to_vec() },
            "nested": { "ok": 0 }, "re": bson::Regex { pattern: "a".into(), options: "".into() },
            "ok": 1.0,
        };
        let mut bytes = Vec::new();
        doc.to_writer(&mut bytes).unwrap();
        let all: Vec<_> = elements(&bytes).collect();
        let names: Vec<&[u8]> = all.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(
            names,
            [
                &b"conversationId"[..],
                b"done",
                b"payload",
                b"nested",
                b"re",
                b"ok"
            ]
        );
        let (_, kind, value) = all[2];
        assert_eq!(binary(kind, value), Some(&b"r=abc"[..]));
        assert_eq!(number(all[5].1, all[5].2), Some(1.0));
        assert_eq!(number(all[1].1, all[1].2), Some(0.0));
        for cut in 0..bytes.len() {
            let _ = elements(&bytes[..cut]).count();
            let mut bad = bytes.clone();
            bad[cut] = 0xff;
            let _ = elements(&bad).count();
        }
    }
}
