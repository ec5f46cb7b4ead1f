//! MongoDB's opcodes, the command names given a label of their own, and server error names.

/// Opcodes (MongoDB wire protocol).
pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;
/// OP_MSG flag: a CRC-32C follows the sections.
pub(crate) const CHECKSUM_PRESENT: u32 = 1;

/// Command names given their own label value; any other is `other`. The CRUD and cursor
/// commands, the handshake, authentication and the common administrative ones.
pub const COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "find",
    "findAndModify",
    "aggregate",
    "count",
    "distinct",
    "getMore",
    "killCursors",
    "bulkWrite",
    "hello",
    "isMaster",
    "ismaster",
    "ping",
    "buildInfo",
    "buildinfo",
    "saslStart",
    "saslContinue",
    "authenticate",
    "logout",
    "endSessions",
    "commitTransaction",
    "abortTransaction",
    "listCollections",
    "listDatabases",
    "listIndexes",
    "create",
    "drop",
    "dropDatabase",
    "createIndexes",
    "dropIndexes",
    "renameCollection",
    "collStats",
    "dbStats",
    "serverStatus",
    "connectionStatus",
    "createUser",
    "dropUser",
    "updateUser",
    "usersInfo",
    "explain",
    "getParameter",
    "setParameter",
    "getLastError",
];

/// The label for a message whose command the filter does not read (compressed, or an
/// opcode it does not know).
pub const COMPRESSED: &str = "compressed";
pub const UNKNOWN_OPCODE: &str = "unknown_opcode";
pub const OTHER: &str = "other";

/// Well-known server error codes by name (`error` label); others are their number.
pub fn error_name(code: i32) -> Option<&'static str> {
    Some(match code {
        2 => "BadValue",
        11 => "UserNotFound",
        13 => "Unauthorized",
        18 => "AuthenticationFailed",
        26 => "NamespaceNotFound",
        43 => "CursorNotFound",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        59 => "CommandNotFound",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        112 => "WriteConflict",
        121 => "DocumentValidationFailure",
        189 => "PrimarySteppedDown",
        251 => "NoSuchTransaction",
        262 => "ExceededTimeLimit",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        13435 => "NotPrimaryNoSecondaryOk",
        _ => return None,
    })
}
