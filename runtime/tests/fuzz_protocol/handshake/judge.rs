//! The server's responses held against the universal rules and the
//! model's verdict.

use super::model::tokens;
use super::{Case, Verdict};
use crate::harness::{self as fuzz, Wire};

const STATUSES: [u16; 12] = [101, 200, 400, 401, 403, 404, 405, 414, 426, 429, 431, 503];

/// Checks the responses; `Ok` says what they were.
pub(super) fn judge(case: &Case, wire: &Wire) -> Result<String, String> {
    let mut responses = Vec::new();
    let mut at = 0;
    let mut upgraded = None;
    while at < wire.bytes.len() {
        let to_head = case.head && responses.is_empty();
        match crate::support::http_response::parse(&wire.bytes[at..], true, to_head)? {
            Some((response, used)) => {
                at += used;
                let switched = response.status == 101;
                responses.push(response);
                if switched {
                    upgraded = Some(&wire.bytes[at..]);
                    break;
                }
            }
            None if wire.reset => break,
            None => {
                return Err(format!(
                    "an incomplete response before the server closed: {:?}",
                    String::from_utf8_lossy(&wire.bytes[at..])
                ));
            }
        }
    }
    for response in &responses {
        if !STATUSES.contains(&response.status) {
            let kind = if response.status >= 500 {
                "a 5xx other than 503"
            } else {
                "a status outside the allowed set"
            };
            return Err(format!(
                "{kind}: {} {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        if response.status == 101 {
            let upgrade = response.header("upgrade").unwrap_or_default();
            let connection = response.header("connection").unwrap_or_default();
            if !upgrade.eq_ignore_ascii_case("websocket")
                || !tokens(connection.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
                || response.header("sec-websocket-accept").is_none()
            {
                return Err(format!("a 101 without the upgrade headers: {response:?}"));
            }
        }
    }
    if let Some(verdict) = &case.verdict {
        let Some(first) = responses.first() else {
            if wire.reset {
                return Ok("reset".into());
            }
            return Err(format!(
                "no response (expected one of {:?}); the server closed after {:?}",
                verdict.statuses,
                String::from_utf8_lossy(&wire.bytes)
            ));
        };
        if !verdict.statuses.contains(&first.status) {
            return Err(format!(
                "status {} (expected one of {:?}): {}",
                first.status,
                verdict.statuses,
                String::from_utf8_lossy(&first.body)
            ));
        }
        if first.status == 101 {
            check_upgrade(verdict, first)?;
        }
    }
    if let Some(rest) = upgraded {
        let last = responses.last().expect("a 101");
        let compressed = last.header("sec-websocket-extensions").is_some();
        let heard = fuzz::hear(
            rest,
            compressed,
            |code| fuzz::SERVER_CLOSE_CODES.contains(&code),
            wire.reset,
        )?;
        if case.verdict.is_some() && !case.pipelined && last.version == "HTTP/1.1" {
            match heard.messages.first() {
                Some((true, greeting)) if greeting.starts_with(b"open ") => {}
                other => {
                    return Err(format!(
                        "after the 101, the handler's greeting did not come: {other:?}"
                    ));
                }
            }
        }
    }
    Ok(match (responses.first(), &case.verdict) {
        (None, _) => "no response".into(),
        (Some(first), Some(_)) => format!("{}", first.status),
        (Some(first), None) => format!("{} (opaque)", first.status),
    })
}

fn check_upgrade(
    verdict: &Verdict,
    response: &crate::support::http_response::Response,
) -> Result<(), String> {
    if let Some(accept) = &verdict.accept
        && response.header("sec-websocket-accept") != Some(accept.as_str())
    {
        return Err(format!(
            "Sec-WebSocket-Accept {:?}, expected {accept:?}",
            response.header("sec-websocket-accept")
        ));
    }
    if response.header("sec-websocket-protocol") != verdict.protocol {
        return Err(format!(
            "Sec-WebSocket-Protocol {:?}, expected {:?}",
            response.header("sec-websocket-protocol"),
            verdict.protocol
        ));
    }
    match response.header("sec-websocket-extensions") {
        Some(_) if verdict.kind != b'z' => {
            Err("permessage-deflate agreed on a pipeline without compression".into())
        }
        Some(value) if !value.starts_with("permessage-deflate") => {
            Err(format!("an odd Sec-WebSocket-Extensions answer: {value:?}"))
        }
        None if verdict.deflate_required => {
            Err("a plain permessage-deflate offer was not agreed".into())
        }
        _ => Ok(()),
    }
}
