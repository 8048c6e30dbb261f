//! Client commands: from Phoenix pushes and plain-WebSocket `command` messages into the
//! pipeline, and replies back to the sender.
//!
//! ```text
//! client ──push──▶ server thread ──[ring of InboundCommand]──▶ CommandReceiver (pipeline)
//! client ◀─phx_reply── server thread ◀──[ring of replies]── CommandReplier::reply
//! ```
//!
//! The effects of a command are published on topics by the pipeline like any other
//! message (through the bus), so every subscriber sees them.
//!
//! Allocation: this path allocates (the topic, event and payload of each command are owned
//! `String`/`Vec`s; each reply owns its payload). Commands are rate-limited per connection,
//! so the rate is bounded; the broadcast hot path never allocates per delivery.

use std::sync::Arc;

/// Who sent a command: the connection and the command's sequence number on it.
///
/// Opaque; hand it back to [`CommandReplier::reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub(crate) conn: u64,
    pub(crate) seq: u64,
}

impl Origin {
    /// The sending connection's id (unique for the server's lifetime).
    pub fn connection(&self) -> u64 {
        self.conn
    }
}

/// One command from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCommand {
    /// Who to reply to.
    pub origin: Origin,
    /// The topic it was pushed on (declared, with this event in its `commands`).
    pub topic: String,
    /// The command name (the Phoenix event / the `event` field).
    pub event: String,
    /// The command's payload: one JSON value.
    pub payload: Vec<u8>,
}

/// A refused command, sent to the client as `{"status":"error","response":{"code","reason"}}`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{code}: {reason}")]
pub struct ReplyError {
    /// Short machine-readable code (`not_found`, `invalid`, …).
    pub code: String,
    /// Human-readable explanation.
    pub reason: String,
}

impl ReplyError {
    /// A reply error with this code and reason.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// A reply on its way to the server.
pub(crate) struct Reply {
    pub origin: Origin,
    pub result: Result<Vec<u8>, ReplyError>,
}

/// The pipeline's end of the command ring.
pub struct CommandReceiver {
    pub(crate) ring: rtrb::Consumer<InboundCommand>,
}

impl CommandReceiver {
    /// The next command, if any.
    pub fn try_recv(&mut self) -> Option<InboundCommand> {
        self.ring.pop().ok()
    }

    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.ring.slots()
    }

    /// Whether no command is waiting.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// The reply ring is full: the reply was not sent (try again after the server drains it).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("reply ring is full")]
pub struct ReplyFull;

/// Sends replies to the connection that pushed a command.
pub struct CommandReplier {
    pub(crate) ring: rtrb::Producer<Reply>,
    pub(crate) waker: Arc<mio::Waker>,
}

impl CommandReplier {
    /// Answers the command from `origin`: `Ok(payload)` (one JSON value; empty means
    /// `{}`) becomes `status: ok`, `Err` becomes `status: error`. Only the sender sees it;
    /// a sender that left is skipped silently. Wakes the server (one `eventfd` write).
    pub fn reply(
        &mut self,
        origin: Origin,
        result: Result<Vec<u8>, ReplyError>,
    ) -> Result<(), ReplyFull> {
        self.ring
            .push(Reply { origin, result })
            .map_err(|_| ReplyFull)?;
        let _ = self.waker.wake();
        Ok(())
    }
}

/// Makes the two command rings.
pub(crate) fn command_rings(
    commands: usize,
    replies: usize,
    waker: Arc<mio::Waker>,
) -> (
    rtrb::Producer<InboundCommand>,
    CommandReceiver,
    CommandReplier,
    rtrb::Consumer<Reply>,
) {
    let (cp, cc) = rtrb::RingBuffer::new(commands.max(1));
    let (rp, rc) = rtrb::RingBuffer::new(replies.max(1));
    (
        cp,
        CommandReceiver { ring: cc },
        CommandReplier { ring: rp, waker },
        rc,
    )
}
