//! Phoenix Channels V2 wire format: `[join_ref, ref, topic, event, payload]` text frames.

use serde_json::Value;

use super::hub::json_str;

/// One decoded client frame.
#[derive(Debug)]
pub(crate) struct PhxIn {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// Why a frame is not a Phoenix V2 message (the socket is closed with 1007).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub(crate) enum PhxParseError {
    #[error("not JSON")]
    NotJson,
    #[error("not an array of 5 elements")]
    NotFiveArray,
    #[error("join_ref and ref must be strings or null")]
    BadRef,
    #[error("topic and event must be strings")]
    BadTopicOrEvent,
}

pub(crate) fn parse(text: &str) -> Result<PhxIn, PhxParseError> {
    let v: Value = serde_json::from_str(text).map_err(|_| PhxParseError::NotJson)?;
    let Value::Array(mut a) = v else {
        return Err(PhxParseError::NotFiveArray);
    };
    if a.len() != 5 {
        return Err(PhxParseError::NotFiveArray);
    }
    let payload = a.pop().unwrap_or(Value::Null);
    let event = a.pop().unwrap_or(Value::Null);
    let topic = a.pop().unwrap_or(Value::Null);
    let msg_ref = opt_ref(a.pop().unwrap_or(Value::Null))?;
    let join_ref = opt_ref(a.pop().unwrap_or(Value::Null))?;
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err(PhxParseError::BadTopicOrEvent);
    };
    Ok(PhxIn {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
    })
}

fn opt_ref(v: Value) -> Result<Option<String>, PhxParseError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(PhxParseError::BadRef),
    }
}

fn opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// `[join_ref, ref, topic, event, payload]` with a raw JSON payload.
pub(crate) fn frame(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &[u8],
) -> String {
    let mut b = Vec::with_capacity(32 + topic.len() + event.len() + payload.len());
    b.push(b'[');
    opt_str(&mut b, join_ref);
    b.push(b',');
    opt_str(&mut b, msg_ref);
    b.push(b',');
    json_str(&mut b, topic);
    b.push(b',');
    json_str(&mut b, event);
    b.push(b',');
    b.extend_from_slice(payload);
    b.push(b']');
    String::from_utf8(b).unwrap_or_default()
}

/// A `phx_reply` with `status: ok` and a raw JSON response.
pub(crate) fn reply_ok(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    response: &[u8],
) -> String {
    let mut p = Vec::with_capacity(32 + response.len());
    p.extend_from_slice(b"{\"status\":\"ok\",\"response\":");
    p.extend_from_slice(if response.is_empty() { b"{}" } else { response });
    p.push(b'}');
    frame(join_ref, msg_ref, topic, "phx_reply", &p)
}

/// A `phx_reply` with `status: error` and `{"reason": reason}` (plus `code` when given).
pub(crate) fn reply_error(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    code: Option<&str>,
    reason: &str,
) -> String {
    let mut p = Vec::with_capacity(64 + reason.len());
    p.extend_from_slice(b"{\"status\":\"error\",\"response\":{\"reason\":");
    json_str(&mut p, reason);
    if let Some(code) = code {
        p.extend_from_slice(b",\"code\":");
        json_str(&mut p, code);
    }
    p.extend_from_slice(b"}}");
    frame(join_ref, msg_ref, topic, "phx_reply", &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_malformed_arrays_are_named() {
        let m = parse(r#"["1","2","room:lobby","phx_join",{"user":"a"}]"#).unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("1"));
        assert_eq!(m.msg_ref.as_deref(), Some("2"));
        assert_eq!(
            (m.topic.as_str(), m.event.as_str()),
            ("room:lobby", "phx_join")
        );
        assert_eq!(m.payload["user"], "a");
        assert_eq!(parse("[1,2").unwrap_err(), PhxParseError::NotJson);
        assert_eq!(
            parse(r#"{"a":1}"#).unwrap_err(),
            PhxParseError::NotFiveArray
        );
        assert_eq!(
            parse(r#"[null,null,"t","e"]"#).unwrap_err(),
            PhxParseError::NotFiveArray
        );
        assert_eq!(
            parse(r#"[[],null,"t","e",{}]"#).unwrap_err(),
            PhxParseError::BadRef
        );
        assert_eq!(
            parse(r#"[null,null,1,"e",{}]"#).unwrap_err(),
            PhxParseError::BadTopicOrEvent
        );
    }

    #[test]
    fn replies_are_valid_phoenix_frames() {
        let ok = reply_ok(Some("1"), Some("2"), "t", b"");
        assert_eq!(
            ok,
            r#"["1","2","t","phx_reply",{"status":"ok","response":{}}]"#
        );
        let err = reply_error(None, Some("3"), "x", None, "unmatched topic");
        assert_eq!(
            err,
            r#"[null,"3","x","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#
        );
    }
}
