//! MongoDB messages for tests, encoded with the `bson` crate.

use super::tables::{OP_MSG, OP_QUERY, OP_REPLY};
use bson::Document;

fn message(id: i32, to: i32, op: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&(16 + payload.len() as i32).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&to.to_le_bytes());
    out.extend_from_slice(&op.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// OP_MSG with a command document and optionally a document sequence (after it, as
/// drivers send inserts), and optionally a checksum.
pub fn op_msg(
    id: i32,
    to: i32,
    body: &Document,
    sequence: Option<(&str, &[Document])>,
    checksum: bool,
) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&u32::from(checksum).to_le_bytes());
    payload.push(0);
    body.to_writer(&mut payload).unwrap();
    if let Some((name, docs)) = sequence {
        let mut section = Vec::new();
        section.extend_from_slice(name.as_bytes());
        section.push(0);
        for doc in docs {
            doc.to_writer(&mut section).unwrap();
        }
        payload.push(1);
        payload.extend_from_slice(&(section.len() as i32 + 4).to_le_bytes());
        payload.extend_from_slice(&section);
    }
    if checksum {
        payload.extend_from_slice(&[1, 2, 3, 4]);
    }
    message(id, to, OP_MSG, &payload)
}

/// OP_QUERY to `namespace` (drivers' legacy handshake: `admin.$cmd`).
pub fn op_query(id: i32, namespace: &str, query: &Document) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 0];
    payload.extend_from_slice(namespace.as_bytes());
    payload.push(0);
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(&(-1i32).to_le_bytes());
    query.to_writer(&mut payload).unwrap();
    message(id, 0, OP_QUERY, &payload)
}

pub fn op_reply(id: i32, to: i32, doc: &Document) -> Vec<u8> {
    let mut payload = vec![0; 20];
    payload[16] = 1; // numberReturned
    doc.to_writer(&mut payload).unwrap();
    message(id, to, OP_REPLY, &payload)
}
