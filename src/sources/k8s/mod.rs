//! Kubernetes watch-event decoding without a DOM.
//!
//! [`WatchDecoder`] turns the bytes of a watch stream — one
//! `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}` per line,
//! as written by the API server (`?watch=1`) and by
//! `kubectl get … --watch --output-watch-events -o json` — into fixed-size
//! [`Record`](crate::sources::record::Record)s. A hand-written validating
//! scanner walks each line once, matches the keys it needs in any order and
//! skips everything else; strings it keeps are interned. Nothing is
//! allocated per event.
//!
//! Entry points:
//!
//! - [`WatchDecoder::decode_lines`] / [`WatchDecoder::decode_complete_lines`]:
//!   newline-delimited watch events (`\n` or `\r\n`; empty lines skipped).
//! - [`WatchDecoder::decode_event`]: one watch event, any whitespace
//!   (pretty-printed events too).
//! - [`WatchDecoder::decode_object`]: one bare object (a GET response).
//! - [`WatchDecoder::decode_document`]: a `*List` (`items`), a JSON array of
//!   objects, or a single object.
//!
//! Supported kinds: Pod, Node, Deployment, Service, ConfigMap, Event
//! (`v1` and `events.k8s.io/v1`) and Status; other kinds are rejected or
//! passed through as [`Kind::Unknown`](crate::sources::record::Kind::Unknown)
//! ([`UnknownKinds`]). The fields extracted per kind, the error variants,
//! counters and limits are listed in `docs/sources.md`.

mod decoder;
mod error;
mod extract;
mod scan;
mod time;

pub use decoder::{
    Decoded, DecoderConfig, DocumentSummary, Line, UnknownKinds, WatchDecoder, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_OBJECT_BYTES, DEFAULT_MAX_STRING_BYTES, MAX_RESUME_VERSION_BYTES,
};
pub use error::{DecodeError, DecodeStats, ErrorCounts, JsonType};
pub use extract::{
    PRESSURE_DISK, PRESSURE_MEMORY, PRESSURE_NETWORK_UNAVAILABLE, PRESSURE_OUT_OF_DISK,
    PRESSURE_PID,
};
