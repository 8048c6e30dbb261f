//! The topic hub: per topic, a bounded history of already-encoded messages.
//!
//! Every message gets a hub-wide offset (1, 2, 3, … in publish order, across all topics)
//! and the hub's epoch; `(epoch, offset)` is its [`Position`]. Offsets of one topic are
//! increasing but not contiguous, so one position resumes any set of topics (SSE streams
//! carry one `id` for all their topics). A message is encoded once per wire form when it
//! enters the hub (Phoenix frame, plain-WebSocket JSON; SSE reuses the plain form) and the
//! encoded bytes are shared by every subscriber (`Utf8Bytes` clones are reference counts).
//!
//! Allocation: each entering message allocates its two encoded forms and its event name on
//! the broadcast thread (independent of the number of subscribers); the history ring itself
//! is preallocated.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::str::FromStr;

use tungstenite::Utf8Bytes;

use super::config::TopicConfig;

/// Where a message sits in the hub: the server's epoch and a hub-wide offset.
///
/// Written `epoch:offset` (SSE `id:`, `Last-Event-ID`, the `id` of plain-WebSocket
/// messages, `since` in subscribe and join requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Changes whenever the server restarts; positions of another epoch cannot resume.
    pub epoch: u64,
    /// Hub-wide message number; 0 is "before the first message".
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.offset)
    }
}

/// A string that is not `epoch:offset` with two decimal `u64`s.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("invalid position {0:?}: expected epoch:offset")]
pub struct PositionParseError(pub String);

impl FromStr for Position {
    type Err = PositionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionParseError(s.chars().take(64).collect());
        let (e, o) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(Position {
            epoch: e.parse().map_err(|_| bad())?,
            offset: o.parse().map_err(|_| bad())?,
        })
    }
}

/// Why a resume could not be served from history; the client must resync from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The position is from another epoch (the server restarted).
    EpochChanged,
    /// Messages after the position have left the topic's history.
    HistoryEvicted,
    /// The position is ahead of anything the hub has published.
    UnknownPosition,
}

impl GapReason {
    /// The wire name (`epoch_changed`, `history_evicted`, `unknown_position`).
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::EpochChanged => "epoch_changed",
            GapReason::HistoryEvicted => "history_evicted",
            GapReason::UnknownPosition => "unknown_position",
        }
    }
}

/// One message, encoded.
pub(crate) struct Entry {
    pub offset: u64,
    /// The topic's cumulative encoded bytes up to and including this entry.
    pub cum_end: u64,
    pub event: Box<str>,
    /// `[null,null,topic,event,payload]`.
    pub phx: Utf8Bytes,
    /// `{"type":"message","topic":…,"event":…,"id":"e:o","payload":…}`.
    pub ws: Utf8Bytes,
    /// Where the payload sits inside `ws`.
    pub payload_at: (u32, u32),
}

impl Entry {
    pub fn payload(&self) -> &[u8] {
        &self.ws.as_bytes()[self.payload_at.0 as usize..self.payload_at.1 as usize]
    }
    pub fn size(&self) -> u64 {
        self.ws.len() as u64
    }
}

/// One presence entry: who (`key`) watches a topic from which connection.
#[derive(Debug, Clone)]
pub(crate) struct PresenceMeta {
    pub key: String,
    pub phx_ref: String,
    pub conn: u64,
    pub online_at: u64,
}

/// One topic: its config, history and subscribers.
pub(crate) struct Topic {
    pub cfg: TopicConfig,
    pub history: VecDeque<Entry>,
    pub total_bytes: u64,
    /// Highest offset that left the history (0: none).
    pub evicted_max: u64,
    /// Connection slots subscribed (any socket transport).
    pub subscribers: Vec<usize>,
    /// In-process subscription slots.
    pub inproc: Vec<usize>,
    /// Phoenix joins tracked as presence.
    pub presence: Vec<PresenceMeta>,
}

impl Topic {
    /// The first entry after `cursor`.
    pub fn next_after(&self, cursor: u64) -> Option<&Entry> {
        let i = self.history.partition_point(|e| e.offset <= cursor);
        self.history.get(i)
    }

    /// Cumulative bytes delivered once a subscriber is at `cursor`.
    pub fn cum_at(&self, cursor: u64) -> u64 {
        let i = self.history.partition_point(|e| e.offset <= cursor);
        if i > 0 {
            self.history[i - 1].cum_end
        } else if let Some(first) = self.history.front() {
            first.cum_end - first.size()
        } else {
            self.total_bytes
        }
    }

    /// Whether a subscriber at `cursor` missed messages that left the history.
    pub fn gap_after(&self, cursor: u64) -> bool {
        self.evicted_max > cursor
    }

    /// The cursor from which only the latest message is still to be delivered.
    pub fn latest_cursor(&self, hub_last: u64) -> u64 {
        match self.history.back() {
            Some(last) => last.offset - 1,
            None => hub_last,
        }
    }
}

/// All topics.
pub(crate) struct Hub {
    pub epoch: u64,
    /// Offset of the latest message (0: none yet).
    pub last_offset: u64,
    pub topics: Vec<Topic>,
    index: HashMap<String, usize>,
    scratch: Vec<u8>,
}

impl Hub {
    pub fn new(topics: &[TopicConfig], epoch: u64) -> Self {
        let index = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Hub {
            epoch,
            last_offset: 0,
            topics: topics
                .iter()
                .map(|cfg| Topic {
                    history: VecDeque::with_capacity(cfg.history.max(1)),
                    cfg: cfg.clone(),
                    total_bytes: 0,
                    evicted_max: 0,
                    subscribers: Vec::new(),
                    inproc: Vec::new(),
                    presence: Vec::new(),
                })
                .collect(),
            index,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// The smallest history of any topic (at least 1).
    pub fn min_history(&self) -> usize {
        self.topics
            .iter()
            .map(|t| t.cfg.history)
            .min()
            .unwrap_or(4096)
            .max(1)
    }

    pub fn topic_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.last_offset,
        }
    }

    /// Appends one message (payload: one JSON value) to topic `t`; returns its offset.
    pub fn append(&mut self, t: usize, event: &str, payload: &[u8]) -> u64 {
        self.last_offset += 1;
        let offset = self.last_offset;
        let epoch = self.epoch;
        let topic = &mut self.topics[t];
        // Phoenix V2 broadcast frame.
        let buf = &mut self.scratch;
        buf.clear();
        buf.extend_from_slice(b"[null,null,");
        json_str(buf, &topic.cfg.name);
        buf.push(b',');
        json_str(buf, event);
        buf.push(b',');
        buf.extend_from_slice(payload);
        buf.push(b']');
        let phx = utf8_bytes(buf);
        // Plain form.
        buf.clear();
        buf.extend_from_slice(b"{\"type\":\"message\",\"topic\":");
        json_str(buf, &topic.cfg.name);
        buf.extend_from_slice(b",\"event\":");
        json_str(buf, event);
        let _ = write!(buf, ",\"id\":\"{epoch}:{offset}\",\"payload\":");
        let start = buf.len() as u32;
        buf.extend_from_slice(payload);
        let end = buf.len() as u32;
        buf.push(b'}');
        let ws = utf8_bytes(buf);
        if topic.history.len() >= topic.cfg.history {
            if let Some(old) = topic.history.pop_front() {
                topic.evicted_max = old.offset;
            }
        }
        topic.total_bytes += ws.len() as u64;
        topic.history.push_back(Entry {
            offset,
            cum_end: topic.total_bytes,
            event: event.into(),
            phx,
            ws,
            payload_at: (start, end),
        });
        offset
    }

    /// Where a new subscriber starts: `(cursor, cum bytes, gap)`; the cursor is the last
    /// offset it is considered to have seen.
    pub fn start(&self, t: usize, since: Option<Position>) -> (u64, u64, Option<GapReason>) {
        let topic = &self.topics[t];
        let live = if topic.cfg.coalesce {
            topic.latest_cursor(self.last_offset)
        } else {
            self.last_offset
        };
        let (cursor, gap) = match since {
            None => (live, None),
            Some(p) if p.epoch != self.epoch => (live, Some(GapReason::EpochChanged)),
            Some(p) if p.offset > self.last_offset => (live, Some(GapReason::UnknownPosition)),
            Some(p) if topic.gap_after(p.offset) => (live, Some(GapReason::HistoryEvicted)),
            Some(p) => (p.offset, None),
        };
        (cursor, topic.cum_at(cursor), gap)
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    for (i, c) in s.char_indices() {
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            _ => buf.extend_from_slice(&s.as_bytes()[i..i + c.len_utf8()]),
        }
    }
    buf.push(b'"');
}

fn utf8_bytes(buf: &[u8]) -> Utf8Bytes {
    // The buffer holds JSON text assembled from `&str`s and a payload checked to be JSON
    // (valid UTF-8) before it entered the hub, so this conversion does not fail.
    Utf8Bytes::from(String::from_utf8_lossy(buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub::new(
            &[
                TopicConfig::new("a", 3),
                TopicConfig::new("b", 2).coalescing(),
            ],
            7,
        )
    }

    #[test]
    fn positions_print_and_parse_and_reject_garbage() {
        let p: Position = "7:42".parse().unwrap();
        assert_eq!(
            p,
            Position {
                epoch: 7,
                offset: 42
            }
        );
        assert_eq!(p.to_string(), "7:42");
        assert!("7".parse::<Position>().is_err());
        assert!("x:1".parse::<Position>().is_err());
        assert!("1:-1".parse::<Position>().is_err());
    }

    #[test]
    fn messages_are_encoded_once_per_form_with_hub_wide_offsets() {
        let mut h = hub();
        assert_eq!(h.append(0, "ev", br#"{"x":1}"#), 1);
        assert_eq!(h.append(1, "e\"q", b"2"), 2);
        let a = &h.topics[0].history[0];
        assert_eq!(a.phx.as_str(), r#"[null,null,"a","ev",{"x":1}]"#);
        assert_eq!(
            a.ws.as_str(),
            r#"{"type":"message","topic":"a","event":"ev","id":"7:1","payload":{"x":1}}"#
        );
        assert_eq!(a.payload(), br#"{"x":1}"#);
        let b = &h.topics[1].history[0];
        assert_eq!(b.phx.as_str(), r#"[null,null,"b","e\"q",2]"#);
        serde_json::from_str::<serde_json::Value>(b.ws.as_str()).unwrap();
    }

    #[test]
    fn history_is_bounded_and_resume_reports_each_kind_of_gap() {
        let mut h = hub();
        for _ in 0..5 {
            h.append(0, "e", b"1");
        }
        // History keeps offsets 3, 4, 5 of topic a.
        assert_eq!(h.topics[0].history.len(), 3);
        assert_eq!(h.topics[0].evicted_max, 2);
        let at = |o| {
            Some(Position {
                epoch: 7,
                offset: o,
            })
        };
        assert_eq!(h.start(0, at(2)).0, 2);
        assert_eq!(h.start(0, at(2)).2, None);
        assert_eq!(h.start(0, at(1)).2, Some(GapReason::HistoryEvicted));
        assert_eq!(h.start(0, at(9)).2, Some(GapReason::UnknownPosition));
        assert_eq!(
            h.start(
                0,
                Some(Position {
                    epoch: 6,
                    offset: 2
                })
            )
            .2,
            Some(GapReason::EpochChanged)
        );
        let (c, _, _) = h.start(0, None);
        assert_eq!(c, 5);
        assert!(h.topics[0].next_after(c).is_none());
        assert_eq!(h.topics[0].next_after(3).unwrap().offset, 4);
        assert_eq!(h.topics[0].next_after(2).unwrap().offset, 3);
    }

    #[test]
    fn a_coalescing_topic_starts_new_subscribers_at_its_latest_message() {
        let mut h = hub();
        h.append(1, "s", b"1");
        h.append(0, "e", b"1");
        h.append(1, "s", b"2");
        let (c, cum, gap) = h.start(1, None);
        assert_eq!(gap, None);
        let next = h.topics[1].next_after(c).unwrap();
        assert_eq!(next.offset, 3);
        assert_eq!(h.topics[1].total_bytes - cum, next.size());
    }
}
