//! The server's answer to the client's frames held against the model
//! ([`judge_frames`]).

use super::{
    Deflated, End, Expect, Heard, SERVER_CLOSE_CODES, Wire, hear, parse_header, predict, show,
    unmask,
};

/// The codes of every close frame in the client's bytes (the server
/// may echo any of them).
fn client_close_codes(bytes: &[u8]) -> Vec<u16> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Ok(h) = parse_header(&bytes[at..]) {
        if ((bytes.len() - at - h.size) as u64) < h.len {
            break;
        }
        let payload = unmask(&bytes[at + h.size..at + h.size + h.len as usize], h.mask);
        if h.opcode == 8 && payload.len() >= 2 {
            found.push(u16::from_be_bytes([payload[0], payload[1]]));
        }
        at += h.size + h.len as usize;
    }
    found
}

fn prefix<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    short.len() <= long.len() && short == &long[..short.len()]
}

fn accepts(expect: &Expect, heard: &Heard, reset: bool) -> bool {
    let exact = heard.messages == expect.messages && heard.pongs == expect.pongs;
    let partly = prefix(&heard.messages, &expect.messages) && prefix(&heard.pongs, &expect.pongs);
    // A pong comes before the replies to messages completed after its ping.
    let pongs_in_order = heard
        .pongs_after
        .iter()
        .zip(&expect.pong_limits)
        .all(|(heard_before, most)| heard_before <= most);
    pongs_in_order
        && match &expect.end {
            End::Echo(payload) => heard.close.as_ref() == Some(payload) && exact,
            End::Close(code) => match heard.close_code() {
                Some(heard_code) => heard_code == *code && exact,
                // A reset can swallow the close frame: a drop is allowed.
                None => reset && heard.close.is_none() && partly,
            },
            End::Eof => heard.close.is_none() && partly,
            End::Loose => {
                prefix(&expect.messages, &heard.messages)
                    || prefix(&heard.messages, &expect.messages)
            }
        }
}

fn describe(expect: &Expect) -> String {
    let messages: Vec<String> = expect
        .messages
        .iter()
        .map(|(t, d)| format!("{}:{}", if *t { "text" } else { "binary" }, show(d)))
        .collect();
    let end = match &expect.end {
        End::Echo(p) => format!("the close echoed ({})", show(p)),
        End::Close(code) => format!("a close with code {code}"),
        End::Eof => "a drop without a close frame (a prefix of the echoes)".into(),
        End::Loose => "anything within the protocol".into(),
    };
    format!(
        "messages [{}], {} pong(s) (each before the replies to messages after its ping: at \
         most {:?} messages before them), then {end}",
        messages.join(", "),
        expect.pongs.len(),
        expect.pong_limits
    )
}

/// Checks what the server said (`wire`) after the client sent `bytes`
/// (on a connection with permessage-deflate when `compressed`; `known`:
/// the compressed payloads the generator made, with their messages) to
/// an echo handler
/// that greets with `open N` and says `bye` on close, under
/// `max_message`. `Ok` says in a word or two what happened.
pub fn judge_frames(
    (bytes, compressed, known): (&[u8], bool, &[Deflated]),
    max_message: usize,
    wire: &Wire,
) -> Result<String, String> {
    let expect = predict(bytes, compressed, known, max_message);
    let theirs = client_close_codes(bytes);
    let allowed = |code: u16| SERVER_CLOSE_CODES.contains(&code) || theirs.contains(&code);
    let mut heard = hear(&wire.bytes, compressed, allowed, wire.reset)?;
    match heard.messages.first() {
        Some((true, greeting)) if greeting.starts_with(b"open ") => {
            heard.messages.remove(0);
            for after in &mut heard.pongs_after {
                *after = after.saturating_sub(1);
            }
        }
        other => {
            return Err(format!(
                "the handler's greeting did not come first: {other:?}"
            ));
        }
    }
    if accepts(&expect, &heard, wire.reset) {
        let kind = if compressed { "/z " } else { "/p " };
        return Ok(kind.to_owned()
            + &match (&expect.end, heard.close_code()) {
                (End::Echo(_), _) => "close echoed".to_owned(),
                (End::Close(_), Some(code)) => format!("close {code}"),
                (End::Close(_), None) => "reset".to_owned(),
                (End::Eof, _) => "drop".to_owned(),
                (End::Loose, _) => "unpredicted".to_owned(),
            });
    }
    let heard_messages: Vec<String> = heard
        .messages
        .iter()
        .map(|(t, d)| format!("{}:{}", if *t { "text" } else { "binary" }, show(d)))
        .collect();
    let mut text = format!(
        "the server's answer breaks the contract\n  expected: {}",
        describe(&expect)
    );
    text += &format!(
        "\n  heard: messages [{}], {} pong(s) (after {:?} messages), close {:?}{}",
        heard_messages.join(", "),
        heard.pongs.len(),
        heard.pongs_after,
        heard.close.as_deref().map(show),
        if wire.reset {
            ", then a reset"
        } else {
            ", then EOF"
        }
    );
    Err(text)
}
