//! Client commands: parsing, request ids and replies (the bidirectional channels pattern).
//!
//! A command travels in the pipeline, in order with the data: the host turns a client's
//! message into a [`Command`] with [`parse_command`], registers it with the
//! [`CommandDesk`] (which assigns the request id and keeps the way back to the sender),
//! and pushes [`Item::from_command`](crate::flow::Item::from_command) into the pipeline.
//! The stage that owns the command applies it and turns the item into a reply; the notify
//! stage completes the request on the desk, which answers the sender, and publishes the
//! effect for every subscriber.
//!
//! Commands with bad arguments are rejected by [`parse_command`] before they enter the
//! pipeline, so they change nothing. The desk allocates (a map entry and a boxed reply
//! callback per command): commands are rare and rate-limited by the channels, and never on
//! the per-event path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::flow::item::Command;
use crate::flow::ReplyCode;

/// Why a client message is not a valid command.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandParseError {
    /// The event names no known command.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// The payload is not a JSON object.
    #[error("payload is not a JSON object")]
    NotAnObject,
    /// A required argument is missing.
    #[error("missing argument `{0}`")]
    Missing(&'static str),
    /// An argument has the wrong type or an impossible value.
    #[error("bad argument `{name}`: {reason}")]
    Bad {
        /// The argument.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The rule named does not exist.
    #[error("unknown rule `{0}`")]
    UnknownRule(String),
}

impl CommandParseError {
    /// The reply code for this error.
    pub fn code(&self) -> ReplyCode {
        match self {
            CommandParseError::UnknownCommand(_) => ReplyCode::UnknownCommand,
            CommandParseError::UnknownRule(_) => ReplyCode::UnknownRule,
            _ => ReplyCode::BadArgument,
        }
    }
}

/// Command names accepted by [`parse_command`].
pub const COMMANDS: &[&str] = &["set_threshold", "enable_rule", "ack_alert", "snapshot"];

/// Parses a client command (`event` plus a JSON object payload) into a [`Command`] with
/// request id 0 (the desk assigns it). `rule_id` maps a rule name to its id; a numeric
/// `rule` argument is taken as an id and checked against `rule_count`.
///
/// | event | arguments |
/// |---|---|
/// | `set_threshold` | `rule` (name or id), `value` (finite number) |
/// | `enable_rule` | `rule`, `enabled` (boolean) |
/// | `ack_alert` | `rule`, `key` (16 hex digits, as in `feedback` messages) |
/// | `snapshot` | none |
pub fn parse_command(
    event: &str,
    payload: &[u8],
    rule_id: &dyn Fn(&str) -> Option<u16>,
    rule_count: usize,
) -> Result<Command, CommandParseError> {
    if !COMMANDS.contains(&event) {
        return Err(CommandParseError::UnknownCommand(event.to_owned()));
    }
    let v: Value = if payload.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(payload).map_err(|_| CommandParseError::NotAnObject)?
    };
    let obj = v.as_object().ok_or(CommandParseError::NotAnObject)?;
    let rule = || -> Result<u16, CommandParseError> {
        match obj.get("rule") {
            None => Err(CommandParseError::Missing("rule")),
            Some(Value::String(name)) => {
                rule_id(name).ok_or_else(|| CommandParseError::UnknownRule(name.clone()))
            }
            Some(Value::Number(n)) => match n.as_u64() {
                Some(id) if (id as usize) < rule_count => Ok(id as u16),
                _ => Err(CommandParseError::UnknownRule(n.to_string())),
            },
            Some(_) => Err(CommandParseError::Bad {
                name: "rule",
                reason: "must be a rule name or id",
            }),
        }
    };
    Ok(match event {
        "set_threshold" => {
            let rule = rule()?;
            let value = obj
                .get("value")
                .ok_or(CommandParseError::Missing("value"))?
                .as_f64()
                .ok_or(CommandParseError::Bad {
                    name: "value",
                    reason: "must be a number",
                })?;
            if !value.is_finite() {
                return Err(CommandParseError::Bad {
                    name: "value",
                    reason: "must be finite",
                });
            }
            Command::SetThreshold {
                request: 0,
                rule,
                value,
            }
        }
        "enable_rule" => {
            let rule = rule()?;
            let enabled = obj
                .get("enabled")
                .ok_or(CommandParseError::Missing("enabled"))?
                .as_bool()
                .ok_or(CommandParseError::Bad {
                    name: "enabled",
                    reason: "must be a boolean",
                })?;
            Command::EnableRule {
                request: 0,
                rule,
                enabled,
            }
        }
        "ack_alert" => {
            let rule = rule()?;
            let key = obj
                .get("key")
                .ok_or(CommandParseError::Missing("key"))?
                .as_str()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(CommandParseError::Bad {
                    name: "key",
                    reason: "must be a hex object key as in feedback messages",
                })?;
            Command::AckAlert {
                request: 0,
                key,
                rule,
            }
        }
        _ => Command::Snapshot { request: 0 },
    })
}

/// Gives a command its request id.
fn with_request(cmd: Command, request: u64) -> Command {
    match cmd {
        Command::SetThreshold { rule, value, .. } => Command::SetThreshold {
            request,
            rule,
            value,
        },
        Command::EnableRule { rule, enabled, .. } => Command::EnableRule {
            request,
            rule,
            enabled,
        },
        Command::AckAlert { key, rule, .. } => Command::AckAlert { request, key, rule },
        Command::Snapshot { .. } => Command::Snapshot { request },
        other => other,
    }
}

/// The outcome of a command, handed to whoever sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The command as applied (with its request id).
    pub command: Command,
    /// Ok, or why it failed.
    pub code: ReplyCode,
    /// Command-specific detail (old threshold, objects in a snapshot, …).
    pub detail: f64,
}

type ReplyFn = Box<dyn FnOnce(Outcome) + Send>;

/// Request ids and the way back to each command's sender.
#[derive(Default)]
pub struct CommandDesk {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, (Command, ReplyFn)>>,
}

impl CommandDesk {
    /// An empty desk.
    pub fn new() -> CommandDesk {
        CommandDesk::default()
    }

    /// Registers `command`; `reply` runs (on the notify thread) when it completes.
    /// Returns the command with its request id, ready to push into the pipeline.
    pub fn submit(
        &self,
        command: Command,
        reply: impl FnOnce(Outcome) + Send + 'static,
    ) -> Command {
        let request = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let cmd = with_request(command, request);
        self.lock().insert(request, (cmd, Box::new(reply)));
        cmd
    }

    /// Completes `request`: runs its reply callback and returns the command, or `None`
    /// if the request is unknown (already completed, or not from this desk).
    pub fn complete(&self, request: u64, code: u16, detail: f64) -> Option<Command> {
        let (cmd, reply) = self.lock().remove(&request)?;
        let code = match code {
            0 => ReplyCode::Ok,
            1 => ReplyCode::UnknownRule,
            2 => ReplyCode::BadArgument,
            3 => ReplyCode::UnknownAlert,
            _ => ReplyCode::UnknownCommand,
        };
        reply(Outcome {
            command: cmd,
            code,
            detail,
        });
        Some(cmd)
    }

    /// Commands submitted and not yet completed.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Command, ReplyFn)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(name: &str) -> Option<u16> {
        (name == "crashloop").then_some(3)
    }

    #[test]
    fn parses_each_command_and_rejects_bad_arguments() {
        assert_eq!(
            parse_command(
                "set_threshold",
                br#"{"rule":"crashloop","value":2}"#,
                &ids,
                8
            ),
            Ok(Command::SetThreshold {
                request: 0,
                rule: 3,
                value: 2.0
            })
        );
        assert_eq!(
            parse_command("set_threshold", br#"{"rule":"nope","value":2}"#, &ids, 8),
            Err(CommandParseError::UnknownRule("nope".into()))
        );
        assert_eq!(
            parse_command("set_threshold", br#"{"rule":9,"value":2}"#, &ids, 8),
            Err(CommandParseError::UnknownRule("9".into()))
        );
        assert!(matches!(
            parse_command("set_threshold", br#"{"rule":3,"value":"x"}"#, &ids, 8),
            Err(CommandParseError::Bad { name: "value", .. })
        ));
        assert!(matches!(
            parse_command("ack_alert", br#"{"rule":3,"key":"zz"}"#, &ids, 8),
            Err(CommandParseError::Bad { name: "key", .. })
        ));
        assert_eq!(
            parse_command(
                "ack_alert",
                br#"{"rule":3,"key":"00000000000000ff"}"#,
                &ids,
                8
            ),
            Ok(Command::AckAlert {
                request: 0,
                key: 255,
                rule: 3
            })
        );
        assert_eq!(
            parse_command("reboot", b"{}", &ids, 8),
            Err(CommandParseError::UnknownCommand("reboot".into()))
        );
        assert_eq!(
            parse_command("snapshot", b"[1]", &ids, 8),
            Err(CommandParseError::NotAnObject)
        );
        assert_eq!(
            parse_command("snapshot", b"", &ids, 8),
            Ok(Command::Snapshot { request: 0 })
        );
    }

    #[test]
    fn desk_answers_each_request_once() {
        let desk = CommandDesk::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let cmd = desk.submit(Command::Snapshot { request: 0 }, move |o| {
            tx.send(o).unwrap();
        });
        let request = cmd.request().unwrap();
        assert_eq!(desk.pending(), 1);
        assert_eq!(desk.complete(request, 0, 42.0), Some(cmd));
        let o = rx.recv().unwrap();
        assert_eq!(o.code, ReplyCode::Ok);
        assert_eq!(o.detail, 42.0);
        assert_eq!(
            desk.complete(request, 0, 0.0),
            None,
            "second completion ignored"
        );
        assert_eq!(desk.pending(), 0);
    }
}
