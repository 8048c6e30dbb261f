//! The reverse flow served over the notification channels: notify publishes into the
//! channels' bus, and client commands (Phoenix pushes, plain WebSocket `command` messages)
//! come back through [`CommandBridge`] into the flow, in order with the data.
//!
//! ```text
//! notify ──BusWriter──▶ channels server (mio) ──▶ Phoenix / WebSocket / SSE / pub-sub
//! host ◀──CommandBridge::pump── command ring ◀── client pushes
//! notify thread ──CommandReplier──▶ reply ring ──▶ the sender only
//! ```

use std::sync::{Arc, Mutex};

use crate::channels::{BusWriter, CommandReceiver, CommandReplier, ReplyError, TopicConfig};
use crate::flow::assembly::ReverseFlow;
use crate::flow::commands::COMMANDS;
use crate::flow::json;
use crate::flow::notify::{topics, Publish};
use crate::flow::ReplyCode;

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
/// of them), `feedback` (`ack_alert`) and `state` (`snapshot`).
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
                topics::COMMANDS => t.with_commands(COMMANDS.iter().copied()),
                topics::FEEDBACK => t.with_commands(["ack_alert"]),
                topics::STATE => t.with_commands(["snapshot"]),
                _ => t,
            }
        })
        .collect()
}

/// Moves client commands from the channels into the flow and routes the replies back.
pub struct CommandBridge {
    receiver: CommandReceiver,
    replier: Arc<Mutex<CommandReplier>>,
    submitted: u64,
    rejected: u64,
}

impl CommandBridge {
    /// A bridge over the server's command rings (`Server::take_commands`).
    pub fn new(receiver: CommandReceiver, replier: CommandReplier) -> CommandBridge {
        CommandBridge {
            receiver,
            replier: Arc::new(Mutex::new(replier)),
            submitted: 0,
            rejected: 0,
        }
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
                let _ = replier
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .reply(origin, result);
            });
            match submitted {
                Ok(_) => self.submitted += 1,
                Err(e) => {
                    self.rejected += 1;
                    let _ = self
                        .replier
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .reply(
                            origin,
                            Err(ReplyError::new(code_name(e.code()), e.to_string())),
                        );
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
