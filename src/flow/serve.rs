//! The reverse flow served over the notification channels: notify publishes into the
//! channels' bus, and client commands (Phoenix pushes, plain WebSocket `command` messages)
//! come back through [`CommandBridge`] into the flow, in order with the data.
//!
//! ```text
//! notify ──BusWriter──▶ channels server (mio) ──▶ Phoenix / WebSocket / SSE / pub-sub
//! host ◀──CommandBridge::pump── command ring ◀── client pushes
//! notify thread ──CommandReplier──▶ reply ring ──▶ the sender only
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::channels::{
    BusWriter, CommandReceiver, CommandReplier, Origin, ReplyError, TopicConfig,
};
use crate::flow::assembly::ReverseFlow;
use crate::flow::commands::COMMANDS;
use crate::flow::json;
use crate::flow::notify::{topics, write_object, Publish};
use crate::flow::ReplyCode;
use crate::journal::{JournalReader, ReplayFrom};
use crate::sources::intern::Resolver;

impl Publish for BusWriter {
    #[inline]
    fn publish(&mut self, topic: &str, event: &str, payload: &[u8]) -> bool {
        self.try_publish(topic, event, payload).is_ok()
    }

    #[inline]
    fn flush(&mut self) {
        BusWriter::flush(self);
    }
}

/// Messages of history kept per topic by default (what a resuming client can recover).
pub const DEFAULT_HISTORY: usize = 4096;

/// The channel topics of the reverse flow: every topic in [`topics::ALL`] with `history`
/// messages of history and presence; `dashboard`, `monitoring` and `analytics` coalesce
/// (a slow client skips to the latest message); commands are accepted on `commands` (all
/// of them, and [`RULES`]), `feedback` (`ack_alert`) and `state` (`snapshot`,
/// [`STATE_SINCE`]).
pub fn flow_topics(history: usize) -> Vec<TopicConfig> {
    topics::ALL
        .iter()
        .map(|&name| {
            let mut t = TopicConfig::new(name, history).with_presence();
            if matches!(
                name,
                topics::DASHBOARD | topics::MONITORING | topics::ANALYTICS
            ) {
                t = t.coalescing();
            }
            match name {
                topics::COMMANDS => t.with_commands(COMMANDS.iter().copied().chain([RULES])),
                topics::FEEDBACK => t.with_commands(["ack_alert"]),
                topics::STATE => t.with_commands(["snapshot", STATE_SINCE]),
                _ => t,
            }
        })
        .collect()
}

/// The `state` topic command that answers a client resuming from a record sequence older
/// than the channels' in-memory history, from the journal (see [`CommandBridge::with_journal`]).
pub const STATE_SINCE: &str = "state_since";

/// Most records one `state_since` reply carries by default.
pub const STATE_SINCE_LIMIT: usize = 1000;

/// The `commands` topic command that returns the rule catalogue, answered by the host at
/// once (it changes nothing): `{"rules":[{"id","name","kinds","namespace","when",
/// "severity","hint","threshold","enabled","raised","cleared"}…],"items_evaluated":N}`.
/// `when` is each predicate as loaded; `threshold` and `enabled` are the live values
/// (after `set_threshold` and `enable_rule`). The payload is ignored.
pub const RULES: &str = "rules";

/// The rule catalogue as [`RULES`] returns it. Allocates (command path).
pub fn rules_reply(flow: &ReverseFlow) -> Vec<u8> {
    let catalog = flow.rules();
    let mut b = Vec::with_capacity(4096);
    b.extend_from_slice(b"{\"rules\":[");
    for (i, def) in flow.rule_definitions().rules().iter().enumerate() {
        let id = i as u16;
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(b"{\"id\":");
        json::uint(&mut b, u64::from(id));
        b.extend_from_slice(b",\"name\":");
        json::string(&mut b, &def.name);
        b.extend_from_slice(b",\"kinds\":[");
        for (k, kind) in def.kind_names().enumerate() {
            if k > 0 {
                b.push(b',');
            }
            json::string(&mut b, kind);
        }
        b.extend_from_slice(b"],\"namespace\":");
        match &def.namespace {
            Some(ns) => json::string(&mut b, ns),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"when\":[");
        for (k, p) in def.preds.iter().enumerate() {
            if k > 0 {
                b.push(b',');
            }
            json::string(&mut b, &p.to_text());
        }
        b.extend_from_slice(b"],\"severity\":");
        json::string(&mut b, def.severity.name());
        b.extend_from_slice(b",\"hint\":");
        json::string(&mut b, &def.hint);
        b.extend_from_slice(b",\"threshold\":");
        match catalog.threshold(id) {
            Some(t) if t.is_finite() => json::float(&mut b, t),
            _ => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"enabled\":");
        json::boolean(&mut b, catalog.enabled(id).unwrap_or(def.enabled));
        let counters = catalog.counters(id).unwrap_or_default();
        b.extend_from_slice(b",\"raised\":");
        json::uint(&mut b, counters.raised);
        b.extend_from_slice(b",\"cleared\":");
        json::uint(&mut b, counters.cleared);
        b.push(b'}');
    }
    b.extend_from_slice(b"],\"items_evaluated\":");
    json::uint(&mut b, catalog.items_evaluated());
    b.push(b'}');
    b
}

/// Moves client commands from the channels into the flow and routes the replies back.
pub struct CommandBridge {
    journal: Option<(PathBuf, Resolver)>,
    receiver: CommandReceiver,
    replier: Arc<Mutex<CommandReplier>>,
    submitted: u64,
    rejected: u64,
}

impl CommandBridge {
    /// A bridge over the server's command rings (`Server::take_commands`).
    pub fn new(receiver: CommandReceiver, replier: CommandReplier) -> CommandBridge {
        CommandBridge {
            journal: None,
            receiver,
            replier: Arc::new(Mutex::new(replier)),
            submitted: 0,
            rejected: 0,
        }
    }

    /// Answers `state_since` from the journal in `dir` (the flow's), resolving names with
    /// `resolver` (the source's interner).
    ///
    /// `{"seq": N, "limit": M}` on the `state` topic replies, to the sender only,
    /// `{"records":[…],"last_seq":…,"complete":…}`: the journaled input records with a
    /// sequence above `N`, in order, at most `M` (default [`STATE_SINCE_LIMIT`]; ask again
    /// from `last_seq` while `complete` is false). Each record is a full object state (the
    /// same object JSON as `state` deltas, plus `op`), so applying them in order to the
    /// state the client had at `N` — upsert, or remove for `DELETED` — gives the current
    /// state without a gap. A sequence older than the journal retains gets the error
    /// `not_retained`: resync from a snapshot. Reads the journal on the host thread;
    /// allocates (command path).
    pub fn with_journal(mut self, dir: impl Into<PathBuf>, resolver: Resolver) -> CommandBridge {
        self.journal = Some((dir.into(), resolver));
        self
    }

    fn state_since(&self, payload: &[u8]) -> Result<Vec<u8>, ReplyError> {
        let Some((dir, resolver)) = &self.journal else {
            return Err(ReplyError::new(
                "no_journal",
                "this engine keeps no journal",
            ));
        };
        let v: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|_| ReplyError::new("bad_argument", "payload is not JSON"))?;
        let since = v["seq"].as_u64().ok_or_else(|| {
            ReplyError::new("bad_argument", "`seq` must be a non-negative integer")
        })?;
        let limit = match v.get("limit") {
            None => STATE_SINCE_LIMIT,
            Some(l) => l.as_u64().filter(|&l| l > 0).ok_or_else(|| {
                ReplyError::new("bad_argument", "`limit` must be a positive integer")
            })? as usize,
        };
        let io = |e: crate::journal::JournalError| ReplyError::new("journal_error", e.to_string());
        let reader = JournalReader::open(dir).map_err(io)?;
        let mut entries = reader.entries(ReplayFrom::Start).map_err(io)?.peekable();
        // The oldest retained record must not be newer than the first one the client
        // lacks, or records in between are gone.
        if let Some(Ok((_, first))) = entries.peek() {
            if first.seq > since + 1 {
                return Err(ReplyError::new(
                    "not_retained",
                    format!(
                        "the journal starts at record {}; resync from a snapshot",
                        first.seq
                    ),
                ));
            }
        }
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(b"{\"records\":[");
        let (mut n, mut last, mut complete) = (0usize, since, true);
        for e in entries {
            let (_, r) = e.map_err(io)?;
            if r.seq <= since {
                continue;
            }
            if n == limit {
                complete = false;
                break;
            }
            if n > 0 {
                body.push(b',');
            }
            write_object(&mut body, resolver, &r);
            // Add the op inside the object.
            body.pop();
            body.extend_from_slice(b",\"op\":");
            json::string(&mut body, r.op.name());
            body.push(b'}');
            n += 1;
            last = r.seq;
        }
        body.extend_from_slice(b"],\"last_seq\":");
        json::uint(&mut body, last);
        body.extend_from_slice(b",\"complete\":");
        json::boolean(&mut body, complete);
        body.push(b'}');
        Ok(body)
    }

    /// Submits every waiting command to `flow`. A command with bad arguments is answered
    /// at once with an error and never enters the flow; the others are answered when the
    /// stage that owns them has applied them (`{"request":…,"code":…,"detail":…}`, or an
    /// error with the reply code's name). Returns how many commands were taken.
    pub fn pump(&mut self, flow: &mut ReverseFlow) -> usize {
        let mut n = 0;
        while let Some(cmd) = self.receiver.try_recv() {
            n += 1;
            let origin = cmd.origin;
            if cmd.event == STATE_SINCE {
                reply(&self.replier, origin, self.state_since(&cmd.payload));
                continue;
            }
            if cmd.event == RULES {
                reply(&self.replier, origin, Ok(rules_reply(flow)));
                continue;
            }
            let replier = self.replier.clone();
            let submitted = flow.submit(&cmd.event, &cmd.payload, move |outcome| {
                let result = if outcome.code == ReplyCode::Ok {
                    let mut body = Vec::with_capacity(64);
                    body.extend_from_slice(b"{\"request\":");
                    json::uint(&mut body, outcome.command.request().unwrap_or(0));
                    body.extend_from_slice(b",\"detail\":");
                    json::float(&mut body, outcome.detail);
                    body.push(b'}');
                    Ok(body)
                } else {
                    Err(ReplyError::new(
                        code_name(outcome.code),
                        format!("{:?}", outcome.command),
                    ))
                };
                reply(&replier, origin, result);
            });
            match submitted {
                Ok(_) => self.submitted += 1,
                Err(e) => {
                    self.rejected += 1;
                    let error = ReplyError::new(code_name(e.code()), e.to_string());
                    reply(&self.replier, origin, Err(error));
                }
            }
        }
        if n > 0 {
            flow.flush();
        }
        n
    }

    /// Commands submitted to the flow so far.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// Commands rejected before entering the flow (bad arguments).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

/// Answers `origin`. A full reply ring drops the reply (`ReplyFull`, not counted): the
/// client's request then times out on its side.
fn reply(replier: &Mutex<CommandReplier>, origin: Origin, result: Result<Vec<u8>, ReplyError>) {
    let _ = replier
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .reply(origin, result);
}

/// The reply code as the error `code` string clients see.
pub fn code_name(code: ReplyCode) -> &'static str {
    match code {
        ReplyCode::Ok => "ok",
        ReplyCode::UnknownRule => "unknown_rule",
        ReplyCode::BadArgument => "bad_argument",
        ReplyCode::UnknownAlert => "unknown_alert",
        ReplyCode::UnknownCommand => "unknown_command",
    }
}
