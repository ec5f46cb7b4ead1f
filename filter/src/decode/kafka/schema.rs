//! Message tables: the fields of the messages the filter decodes deeply, per version.
//!
//! Like Envoy's Kafka codec, the layouts are data, not code: [`super::walker::Walker`]
//! interprets them over a byte stream. Only fields with a [`Role`] other than
//! [`Role::Skip`] are reported; everything else is stepped over without being copied.
//! The layouts follow Apache Kafka's `clients/src/main/resources/common/message/*.json`
//! (as generated into the `kafka-protocol` crate, which the tests encode with), plus the
//! pre-4.0 versions that crate no longer knows.

/// What a decoded field means to the summary (a field's role; not Kafka's tagged fields,
/// which the walker skips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Skip,
    /// Header fields.
    ApiKey,
    ApiVersion,
    CorrelationId,
    ClientId,
    /// Produce request `acks` (0 means no response will come).
    Acks,
    /// An element of a per-topic array.
    Topic,
    /// An element of a per-partition array.
    Partition,
    /// An element of FindCoordinator's `coordinators` array (v4+): a group's (or
    /// transactional id's) coordinator, its error reported when the element ends.
    Coordinator,
    TopicName,
    TopicId,
    PartitionIndex,
    ErrorCode,
    HighWatermark,
    FetchOffset,
    /// A share group's acknowledgement batch (an element; ShareFetch and ShareAcknowledge
    /// requests): its offset range and its type(s), one for the range or one per offset.
    AckBatch,
    AckFirstOffset,
    AckLastOffset,
    AckType,
    /// Records a ShareFetch response hands the consumer: an acquired offset range.
    AcquiredFirstOffset,
    AcquiredLastOffset,
    /// A Fetch response partition's aborted transaction (read_committed fetches): the
    /// producer and the offset its transaction began at.
    AbortedProducerId,
    AbortedFirstOffset,
}

/// Wire types. Strings, byte arrays and arrays become "compact" in flexible versions.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    I8,
    I16,
    I32,
    I64,
    Bool,
    Uuid,
    /// A (nullable) string; compact in flexible versions.
    Str,
    /// A (nullable) string that keeps its INT16 length even in flexible versions
    /// (the request header's client id).
    LegacyStr,
    /// A (nullable) byte array, skipped.
    Bytes,
    /// A (nullable) byte array holding record batches, walked batch by batch.
    Records,
    /// An array of INT32, skipped.
    I32Array,
    /// An array of structs.
    Array(&'static [Field]),
    /// An array of one fixed-width field per element, each reported (no tagged fields per
    /// element, unlike a struct's).
    PackedArray(&'static Field),
    /// A struct inline, without a length (tagged fields at its end when flexible).
    Struct(&'static [Field]),
}

impl Ty {
    /// Size of a fixed-width type, `None` for variable-length ones.
    pub const fn fixed_size(self) -> Option<usize> {
        match self {
            Ty::I8 | Ty::Bool => Some(1),
            Ty::I16 => Some(2),
            Ty::I32 => Some(4),
            Ty::I64 => Some(8),
            Ty::Uuid => Some(16),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub ty: Ty,
    pub role: Role,
    /// Inclusive version range in which the field is present.
    pub min: i16,
    pub max: i16,
}

impl Field {
    pub const fn present_in(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

const ALL: i16 = i16::MAX;

const fn f(ty: Ty, role: Role, min: i16, max: i16) -> Field {
    Field { ty, role, min, max }
}

/// A field that is present in every version from `min` on and is not reported.
const fn skip(ty: Ty, min: i16) -> Field {
    f(ty, Role::Skip, min, ALL)
}

/// The layout of a message the filter decodes deeply: its fields, the highest version whose layout we know, and the version
/// from which the message is "flexible" (compact types and tagged fields).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub fields: &'static [Field],
    pub min_version: i16,
    pub max_version: i16,
    pub flexible_from: i16,
}

impl Layout {
    /// Whether the layout knows `version`.
    pub const fn knows(&self, version: i16) -> bool {
        self.min_version <= version && version <= self.max_version
    }

    pub const fn is_flexible(&self, version: i16) -> bool {
        version >= self.flexible_from
    }
}

// ---- headers ---------------------------------------------------------------------

/// Request header v1/v2 up to the client id; the v2 tagged fields are read by the body
/// walker (see `Walker::new`).
pub const REQUEST_HEADER: &[Field] = &[
    f(Ty::I16, Role::ApiKey, 0, ALL),
    f(Ty::I16, Role::ApiVersion, 0, ALL),
    f(Ty::I32, Role::CorrelationId, 0, ALL),
    f(Ty::LegacyStr, Role::ClientId, 0, ALL),
];

/// Response header v0/v1 (v1's tagged fields are read by the body walker).
pub const RESPONSE_HEADER: &[Field] = &[f(Ty::I32, Role::CorrelationId, 0, ALL)];

// ---- Produce (0) -----------------------------------------------------------------

const PRODUCE_REQUEST_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    skip(Ty::Records, 0),
];
const PRODUCE_REQUEST_TOPIC: &[Field] = &[
    f(Ty::Str, Role::TopicName, 0, 12),
    f(Ty::Uuid, Role::TopicId, 13, ALL),
    f(
        Ty::Array(PRODUCE_REQUEST_PARTITION),
        Role::Partition,
        0,
        ALL,
    ),
];
pub const PRODUCE_REQUEST: Layout = Layout {
    fields: &[
        skip(Ty::Str, 3), // transactional_id
        f(Ty::I16, Role::Acks, 0, ALL),
        skip(Ty::I32, 0), // timeout_ms
        f(Ty::Array(PRODUCE_REQUEST_TOPIC), Role::Topic, 0, ALL),
    ],
    min_version: 0,
    max_version: 13,
    flexible_from: 9,
};

const PRODUCE_RECORD_ERROR: &[Field] = &[
    skip(Ty::I32, 0), // batch_index
    skip(Ty::Str, 0), // batch_index_error_message
];
const PRODUCE_RESPONSE_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    skip(Ty::I64, 0), // base_offset
    skip(Ty::I64, 2), // log_append_time_ms
    skip(Ty::I64, 5), // log_start_offset
    skip(Ty::Array(PRODUCE_RECORD_ERROR), 8),
    skip(Ty::Str, 8), // error_message
];
const PRODUCE_RESPONSE_TOPIC: &[Field] = &[
    f(Ty::Str, Role::TopicName, 0, 12),
    f(Ty::Uuid, Role::TopicId, 13, ALL),
    f(
        Ty::Array(PRODUCE_RESPONSE_PARTITION),
        Role::Partition,
        0,
        ALL,
    ),
];
pub const PRODUCE_RESPONSE: Layout = Layout {
    fields: &[
        f(Ty::Array(PRODUCE_RESPONSE_TOPIC), Role::Topic, 0, ALL),
        skip(Ty::I32, 1), // throttle_time_ms
    ],
    min_version: 0,
    max_version: 13,
    flexible_from: 9,
};

// ---- Fetch (1) -------------------------------------------------------------------

const FETCH_REQUEST_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    skip(Ty::I32, 9), // current_leader_epoch
    f(Ty::I64, Role::FetchOffset, 0, ALL),
    skip(Ty::I32, 12), // last_fetched_epoch
    skip(Ty::I64, 5),  // log_start_offset
    skip(Ty::I32, 0),  // partition_max_bytes
];
const FETCH_REQUEST_TOPIC: &[Field] = &[
    f(Ty::Str, Role::TopicName, 0, 12),
    f(Ty::Uuid, Role::TopicId, 13, ALL),
    f(Ty::Array(FETCH_REQUEST_PARTITION), Role::Partition, 0, ALL),
];
const FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f(Ty::Str, Role::Skip, 7, 12),
    f(Ty::Uuid, Role::Skip, 13, ALL),
    skip(Ty::I32Array, 7),
];
pub const FETCH_REQUEST: Layout = Layout {
    fields: &[
        f(Ty::I32, Role::Skip, 0, 14), // replica_id
        skip(Ty::I32, 0),              // max_wait_ms
        skip(Ty::I32, 0),              // min_bytes
        skip(Ty::I32, 3),              // max_bytes
        skip(Ty::I8, 4),               // isolation_level
        skip(Ty::I32, 7),              // session_id
        skip(Ty::I32, 7),              // session_epoch
        f(Ty::Array(FETCH_REQUEST_TOPIC), Role::Topic, 0, ALL),
        skip(Ty::Array(FETCH_FORGOTTEN_TOPIC), 7),
        skip(Ty::Str, 11), // rack_id
    ],
    min_version: 0,
    max_version: 18,
    flexible_from: 12,
};

const FETCH_ABORTED_TRANSACTION: &[Field] = &[
    f(Ty::I64, Role::AbortedProducerId, 0, ALL),
    f(Ty::I64, Role::AbortedFirstOffset, 0, ALL),
];
const FETCH_RESPONSE_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    f(Ty::I64, Role::HighWatermark, 0, ALL),
    skip(Ty::I64, 4), // last_stable_offset
    skip(Ty::I64, 5), // log_start_offset
    skip(Ty::Array(FETCH_ABORTED_TRANSACTION), 4),
    skip(Ty::I32, 11), // preferred_read_replica
    skip(Ty::Records, 0),
];
const FETCH_RESPONSE_TOPIC: &[Field] = &[
    f(Ty::Str, Role::TopicName, 0, 12),
    f(Ty::Uuid, Role::TopicId, 13, ALL),
    f(Ty::Array(FETCH_RESPONSE_PARTITION), Role::Partition, 0, ALL),
];
pub const FETCH_RESPONSE: Layout = Layout {
    fields: &[
        skip(Ty::I32, 1), // throttle_time_ms
        f(Ty::I16, Role::ErrorCode, 7, ALL),
        skip(Ty::I32, 7), // session_id
        f(Ty::Array(FETCH_RESPONSE_TOPIC), Role::Topic, 0, ALL),
    ],
    min_version: 0,
    max_version: 18,
    flexible_from: 12,
};

// ---- Metadata (3) ----------------------------------------------------------------

const METADATA_BROKER: &[Field] = &[
    skip(Ty::I32, 0), // node_id
    skip(Ty::Str, 0), // host
    skip(Ty::I32, 0), // port
    skip(Ty::Str, 1), // rack
];
const METADATA_PARTITION: &[Field] = &[
    skip(Ty::I16, 0),      // error_code
    skip(Ty::I32, 0),      // partition_index
    skip(Ty::I32, 0),      // leader_id
    skip(Ty::I32, 7),      // leader_epoch
    skip(Ty::I32Array, 0), // replica_nodes
    skip(Ty::I32Array, 0), // isr_nodes
    skip(Ty::I32Array, 5), // offline_replicas
];
const METADATA_TOPIC: &[Field] = &[
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    f(Ty::Str, Role::TopicName, 0, ALL),
    f(Ty::Uuid, Role::TopicId, 10, ALL),
    skip(Ty::Bool, 1), // is_internal
    skip(Ty::Array(METADATA_PARTITION), 0),
    skip(Ty::I32, 8), // topic_authorized_operations
];
pub const METADATA_RESPONSE: Layout = Layout {
    fields: &[
        skip(Ty::I32, 3), // throttle_time_ms
        skip(Ty::Array(METADATA_BROKER), 0),
        skip(Ty::Str, 2), // cluster_id
        skip(Ty::I32, 1), // controller_id
        f(Ty::Array(METADATA_TOPIC), Role::Topic, 0, ALL),
        f(Ty::I32, Role::Skip, 8, 10), // cluster_authorized_operations
        f(Ty::I16, Role::ErrorCode, 13, ALL),
    ],
    min_version: 0,
    max_version: 13,
    flexible_from: 9,
};

// ---- FindCoordinator (10) -----------------------------------------------------------

const FIND_COORDINATOR_COORDINATOR: &[Field] = &[
    skip(Ty::Str, 0), // key
    skip(Ty::I32, 0), // node_id
    skip(Ty::Str, 0), // host
    skip(Ty::I32, 0), // port
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    skip(Ty::Str, 0), // error_message
];
/// Why a consumer has no group: GROUP_AUTHORIZATION_FAILED (no ACL on the group),
/// COORDINATOR_NOT_AVAILABLE, ... Versions 0-3 answer one key at the top level, 4+ a list.
pub const FIND_COORDINATOR_RESPONSE: Layout = Layout {
    fields: &[
        skip(Ty::I32, 1),                  // throttle_time_ms
        f(Ty::I16, Role::ErrorCode, 0, 3), // error_code
        f(Ty::Str, Role::Skip, 1, 3),      // error_message
        f(Ty::I32, Role::Skip, 0, 3),      // node_id
        f(Ty::Str, Role::Skip, 0, 3),      // host
        f(Ty::I32, Role::Skip, 0, 3),      // port
        f(
            Ty::Array(FIND_COORDINATOR_COORDINATOR),
            Role::Coordinator,
            4,
            ALL,
        ),
    ],
    min_version: 0,
    max_version: 6,
    flexible_from: 3,
};

// ---- ApiVersions (18) ------------------------------------------------------------

const API_VERSIONS_KEY: &[Field] = &[
    skip(Ty::I16, 0), // api_key
    skip(Ty::I16, 0), // min_version
    skip(Ty::I16, 0), // max_version
];
pub const API_VERSIONS_RESPONSE: Layout = Layout {
    fields: &[
        f(Ty::I16, Role::ErrorCode, 0, ALL),
        skip(Ty::Array(API_VERSIONS_KEY), 0),
        skip(Ty::I32, 1), // throttle_time_ms
    ],
    min_version: 0,
    max_version: 4,
    flexible_from: 3,
};

// ---- share groups (KIP-932) ---------------------------------------------------------
// As Apache Kafka 4.3.1 defines them (its generated `*Data.SCHEMAS`, read with the client
// jar): versions 1 and 2, topics by id only. Version 0 was Kafka 4.0's early access, which
// 4.1 and later brokers refuse; it is not decoded.

/// Acknowledgement types (`ShareFetch`/`ShareAcknowledge` requests): 0 is a gap (offsets
/// without records), then accept, release, reject, renew (v2).
const SHARE_ACK_TYPE: Field = f(Ty::I8, Role::AckType, 0, ALL);
const SHARE_ACK_BATCH: &[Field] = &[
    f(Ty::I64, Role::AckFirstOffset, 0, ALL),
    f(Ty::I64, Role::AckLastOffset, 0, ALL),
    skip(Ty::PackedArray(&SHARE_ACK_TYPE), 0),
];
const SHARE_ACK_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    f(Ty::Array(SHARE_ACK_BATCH), Role::AckBatch, 0, ALL),
];
const SHARE_ACK_TOPIC: &[Field] = &[
    f(Ty::Uuid, Role::TopicId, 0, ALL),
    f(Ty::Array(SHARE_ACK_PARTITION), Role::Partition, 0, ALL),
];
const SHARE_FORGOTTEN_TOPIC: &[Field] = &[skip(Ty::Uuid, 0), skip(Ty::I32Array, 0)];
pub const SHARE_FETCH_REQUEST: Layout = Layout {
    fields: &[
        skip(Ty::Str, 0),  // group_id
        skip(Ty::Str, 0),  // member_id
        skip(Ty::I32, 0),  // share_session_epoch
        skip(Ty::I32, 0),  // max_wait_ms
        skip(Ty::I32, 0),  // min_bytes
        skip(Ty::I32, 0),  // max_bytes
        skip(Ty::I32, 1),  // max_records
        skip(Ty::I32, 1),  // batch_size
        skip(Ty::I8, 2),   // share_acquire_mode
        skip(Ty::Bool, 2), // is_renew_ack
        f(Ty::Array(SHARE_ACK_TOPIC), Role::Topic, 0, ALL),
        skip(Ty::Array(SHARE_FORGOTTEN_TOPIC), 0),
    ],
    min_version: 1,
    max_version: 2,
    flexible_from: 0,
};
const SHARE_LEADER: &[Field] = &[skip(Ty::I32, 0), skip(Ty::I32, 0)];
const SHARE_NODE_ENDPOINT: &[Field] = &[
    skip(Ty::I32, 0), // node_id
    skip(Ty::Str, 0), // host
    skip(Ty::I32, 0), // port
    skip(Ty::Str, 0), // rack
];
const SHARE_ACQUIRED_RECORDS: &[Field] = &[
    f(Ty::I64, Role::AcquiredFirstOffset, 0, ALL),
    f(Ty::I64, Role::AcquiredLastOffset, 0, ALL),
    skip(Ty::I16, 0), // delivery_count
];
const SHARE_FETCH_RESPONSE_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    skip(Ty::Str, 0), // error_message
    skip(Ty::I16, 0), // acknowledge_error_code
    skip(Ty::Str, 0), // acknowledge_error_message
    skip(Ty::Struct(SHARE_LEADER), 0),
    skip(Ty::Records, 0),
    skip(Ty::Array(SHARE_ACQUIRED_RECORDS), 0),
];
const SHARE_FETCH_RESPONSE_TOPIC: &[Field] = &[
    f(Ty::Uuid, Role::TopicId, 0, ALL),
    f(
        Ty::Array(SHARE_FETCH_RESPONSE_PARTITION),
        Role::Partition,
        0,
        ALL,
    ),
];
pub const SHARE_FETCH_RESPONSE: Layout = Layout {
    fields: &[
        skip(Ty::I32, 0), // throttle_time_ms
        f(Ty::I16, Role::ErrorCode, 0, ALL),
        skip(Ty::Str, 0), // error_message
        skip(Ty::I32, 1), // acquisition_lock_timeout_ms
        f(Ty::Array(SHARE_FETCH_RESPONSE_TOPIC), Role::Topic, 0, ALL),
        skip(Ty::Array(SHARE_NODE_ENDPOINT), 0),
    ],
    min_version: 1,
    max_version: 2,
    flexible_from: 0,
};
pub const SHARE_ACKNOWLEDGE_REQUEST: Layout = Layout {
    fields: &[
        skip(Ty::Str, 0),  // group_id
        skip(Ty::Str, 0),  // member_id
        skip(Ty::I32, 0),  // share_session_epoch
        skip(Ty::Bool, 2), // is_renew_ack
        f(Ty::Array(SHARE_ACK_TOPIC), Role::Topic, 0, ALL),
    ],
    min_version: 1,
    max_version: 2,
    flexible_from: 0,
};
const SHARE_ACKNOWLEDGE_RESPONSE_PARTITION: &[Field] = &[
    f(Ty::I32, Role::PartitionIndex, 0, ALL),
    f(Ty::I16, Role::ErrorCode, 0, ALL),
    skip(Ty::Str, 0), // error_message
    skip(Ty::Struct(SHARE_LEADER), 0),
];
const SHARE_ACKNOWLEDGE_RESPONSE_TOPIC: &[Field] = &[
    f(Ty::Uuid, Role::TopicId, 0, ALL),
    f(
        Ty::Array(SHARE_ACKNOWLEDGE_RESPONSE_PARTITION),
        Role::Partition,
        0,
        ALL,
    ),
];
pub const SHARE_ACKNOWLEDGE_RESPONSE: Layout = Layout {
    fields: &[
        skip(Ty::I32, 0), // throttle_time_ms
        f(Ty::I16, Role::ErrorCode, 0, ALL),
        skip(Ty::Str, 0), // error_message
        skip(Ty::I32, 2), // acquisition_lock_timeout_ms
        f(
            Ty::Array(SHARE_ACKNOWLEDGE_RESPONSE_TOPIC),
            Role::Topic,
            0,
            ALL,
        ),
        skip(Ty::Array(SHARE_NODE_ENDPOINT), 0),
    ],
    min_version: 1,
    max_version: 2,
    flexible_from: 0,
};

/// API keys the filter decodes deeply.
pub mod api {
    pub const PRODUCE: i16 = 0;
    pub const FETCH: i16 = 1;
    pub const METADATA: i16 = 3;
    pub const FIND_COORDINATOR: i16 = 10;
    pub const API_VERSIONS: i16 = 18;
    pub const SHARE_FETCH: i16 = 78;
    pub const SHARE_ACKNOWLEDGE: i16 = 79;
}

/// The request layout to walk for an API, if the filter decodes its requests.
pub fn request(api_key: i16) -> Option<&'static Layout> {
    match api_key {
        api::PRODUCE => Some(&PRODUCE_REQUEST),
        api::FETCH => Some(&FETCH_REQUEST),
        api::SHARE_FETCH => Some(&SHARE_FETCH_REQUEST),
        api::SHARE_ACKNOWLEDGE => Some(&SHARE_ACKNOWLEDGE_REQUEST),
        _ => None,
    }
}

/// The response layout to walk for an API, if the filter decodes its responses.
pub fn response(api_key: i16) -> Option<&'static Layout> {
    match api_key {
        api::PRODUCE => Some(&PRODUCE_RESPONSE),
        api::FETCH => Some(&FETCH_RESPONSE),
        api::METADATA => Some(&METADATA_RESPONSE),
        api::FIND_COORDINATOR => Some(&FIND_COORDINATOR_RESPONSE),
        api::API_VERSIONS => Some(&API_VERSIONS_RESPONSE),
        api::SHARE_FETCH => Some(&SHARE_FETCH_RESPONSE),
        api::SHARE_ACKNOWLEDGE => Some(&SHARE_ACKNOWLEDGE_RESPONSE),
        _ => None,
    }
}

/// Whether a request of this API and version carries header v2 (tagged fields).
/// Only needed for the APIs decoded deeply; other bodies are skipped whole.
pub fn request_header_is_flexible(api_key: i16, version: i16) -> bool {
    match api_key {
        api::API_VERSIONS => version >= 3,
        _ => request(api_key).is_some_and(|m| m.is_flexible(version)),
    }
}

/// Whether a response of this API and version carries header v1 (tagged fields).
/// ApiVersions responses always use header v0 so that any client can read them.
pub fn response_header_is_flexible(api_key: i16, version: i16) -> bool {
    api_key != api::API_VERSIONS && response(api_key).is_some_and(|m| m.is_flexible(version))
}
