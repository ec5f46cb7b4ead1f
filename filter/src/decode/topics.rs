//! Topic names as label values: interned once per VM, capped, and resolved from ids.
//!
//! Envoy never deletes a stat, so every distinct topic label lives for the life of the
//! proxy: past `limit` distinct names, topics are reported under one overflow value.
//! Topic ids (Fetch v13+, Produce v13+) are mapped to names learned from Metadata
//! responses of any connection of the VM, and of any other VM of the proxy through a
//! [`SharedIds`] table (proxy-wasm shared data, in the glue).
//!
//! Envoy runs one VM per worker thread, and a Kafka client sends Metadata on one
//! connection and Produce or Fetch by id on another within milliseconds, often served by
//! the other worker. So an id is published in the very callback that learned it, before
//! the Metadata bytes are passed on to the client (who cannot name the id before it has
//! them), and an id unknown here is looked up in the shared table each time it is
//! resolved (at the response, when records are counted), never cached as unknown.

use std::collections::HashMap;

use crate::labels::sanitize;

/// Index of a topic label value.
pub type TopicIdx = u16;

/// Topics beyond the cardinality limit.
pub const OVERFLOW: TopicIdx = 0;
/// A topic id no Metadata response has named yet.
pub const UNKNOWN: TopicIdx = 1;
/// Topic ids remembered per VM (about 1.5 MiB at most); ids past it resolve as unknown.
pub const MAX_IDS: usize = 65_000;

pub type TopicId = [u8; 16];

/// The table of topic ids every VM of the proxy reads and writes (proxy-wasm shared
/// data in the glue, a map in tests).
pub trait SharedIds {
    /// Make `id` -> `name` visible to every VM, now.
    fn publish(&self, id: &TopicId, name: &str);
    /// The name another VM published for `id`.
    fn lookup(&self, id: &TopicId) -> Option<String>;
}

pub struct Topics {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, TopicIdx>,
    ids: HashMap<TopicId, TopicIdx>,
    limit: usize,
    shared: Option<Box<dyn SharedIds>>,
}

impl Topics {
    /// `limit`: distinct topic names reported (at most 65,000); `overflow`: the label value
    /// that stands for all others.
    pub fn new(limit: usize, overflow: &str) -> Self {
        Topics {
            names: vec![sanitize(overflow.as_bytes()).into(), "unknown".into()],
            index: HashMap::new(),
            ids: HashMap::new(),
            limit: limit.min(65_000),
            shared: None,
        }
    }

    /// The index of a topic name (the overflow index once the limit is reached).
    pub fn intern(&mut self, raw: &[u8]) -> TopicIdx {
        if let Some(&idx) = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| self.index.get(s))
        {
            return idx;
        }
        let name = sanitize(raw);
        if let Some(&idx) = self.index.get(name.as_str()) {
            return idx;
        }
        if self.index.len() >= self.limit {
            return OVERFLOW;
        }
        let idx = self.names.len() as TopicIdx;
        let name: Box<str> = name.into();
        self.names.push(name.clone());
        self.index.insert(name, idx);
        idx
    }

    pub fn name(&self, idx: TopicIdx) -> &str {
        self.names.get(usize::from(idx)).map_or("unknown", |n| n)
    }

    /// Record that `id` names topic `idx` (from a Metadata response), and publish it to
    /// the other VMs at once if it is new or changed.
    pub fn learn_id(&mut self, id: TopicId, idx: TopicIdx) {
        if id == [0; 16] || (self.ids.len() >= MAX_IDS && !self.ids.contains_key(&id)) {
            return;
        }
        if self.ids.insert(id, idx) != Some(idx) {
            if let Some(shared) = &self.shared {
                shared.publish(&id, self.name(idx));
            }
        }
    }

    /// Record an id learned by another VM (no re-publication).
    pub fn adopt_id(&mut self, id: TopicId, name: &[u8]) -> TopicIdx {
        let idx = self.intern(name);
        if self.ids.len() < MAX_IDS {
            self.ids.insert(id, idx);
        }
        idx
    }

    /// Topic ids remembered.
    pub fn ids_len(&self) -> usize {
        self.ids.len()
    }

    pub fn by_id(&self, id: &TopicId) -> Option<TopicIdx> {
        self.ids.get(id).copied()
    }

    /// The table shared with the other VMs: learned ids are published there, unknown
    /// ones looked up there.
    pub fn share_with(&mut self, shared: Box<dyn SharedIds>) {
        self.shared = Some(shared);
    }

    /// The label of a topic id: learned here, learned by another VM, or `unknown`.
    pub fn resolve_id(&mut self, id: &TopicId) -> TopicIdx {
        if let Some(idx) = self.by_id(id) {
            return idx;
        }
        let found = self.shared.as_ref().and_then(|shared| shared.lookup(id));
        found.map_or(UNKNOWN, |name| self.adopt_id(*id, name.as_bytes()))
    }

    /// Distinct topic names admitted (excluding the overflow and unknown values).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Hex form of a topic id, for shared-data keys.
pub fn id_hex(id: &TopicId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_at_most_max_ids_topic_ids() {
        let mut topics = Topics::new(10, "_other");
        let idx = topics.intern(b"orders");
        for i in 0..MAX_IDS as u128 + 5000 {
            topics.learn_id((i + 1).to_be_bytes(), idx);
        }
        assert_eq!(topics.ids_len(), MAX_IDS);
        // A known id is still updated; an unknown one past the cap resolves as unknown.
        assert_eq!(topics.resolve_id(&1u128.to_be_bytes()), idx);
        assert_eq!(
            topics.resolve_id(&(MAX_IDS as u128 + 10).to_be_bytes()),
            UNKNOWN
        );
    }

    #[test]
    fn caps_distinct_names_and_keeps_admitted_ones() {
        let mut topics = Topics::new(2, "_other");
        let a = topics.intern(b"orders.v1");
        let b = topics.intern(b"payments");
        assert_ne!(a, b);
        assert_eq!(topics.intern(b"third"), OVERFLOW);
        assert_eq!(topics.intern(b"orders.v1"), a);
        assert_eq!(topics.name(OVERFLOW), "_other");
        assert_eq!(topics.name(a), "orders.v1");
        assert_eq!(topics.len(), 2);
    }

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    /// Shared data as the host keeps it, with a log of every write.
    #[derive(Clone, Default)]
    struct Table(Rc<RefCell<(HashMap<TopicId, String>, Writes)>>);
    type Writes = Vec<TopicId>;

    impl SharedIds for Table {
        fn publish(&self, id: &TopicId, name: &str) {
            let mut table = self.0.borrow_mut();
            table.0.insert(*id, name.to_string());
            table.1.push(*id);
        }
        fn lookup(&self, id: &TopicId) -> Option<String> {
            self.0.borrow().0.get(id).cloned()
        }
    }

    #[test]
    fn ids_are_published_when_learned_and_once() {
        let table = Table::default();
        let mut topics = Topics::new(10, "_other");
        topics.share_with(Box::new(table.clone()));
        let idx = topics.intern(b"t");
        topics.learn_id([7; 16], idx);
        assert_eq!(table.lookup(&[7; 16]).as_deref(), Some("t"));
        topics.learn_id([7; 16], idx);
        assert_eq!(topics.by_id(&[7; 16]), Some(idx));
        assert_eq!(table.0.borrow().1.len(), 1, "published once");
    }

    #[test]
    fn an_id_unknown_is_looked_up_again_every_time() {
        let table = Table::default();
        let mut other = Topics::new(10, "_other");
        other.share_with(Box::new(table.clone()));
        let mut topics = Topics::new(10, "_other");
        topics.share_with(Box::new(table.clone()));
        assert_eq!(topics.resolve_id(&[9; 16]), UNKNOWN);
        let idx = other.intern(b"orders");
        other.learn_id([9; 16], idx);
        let found = topics.resolve_id(&[9; 16]);
        assert_eq!(topics.name(found), "orders");
        // Adopted, not published again.
        assert_eq!(table.0.borrow().1.len(), 1);
    }
}
