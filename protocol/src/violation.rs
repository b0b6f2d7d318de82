//! Which close code a client's broken frame earns (RFC 6455 §7.4.1), from
//! the error reading it: the frame shim's refusals and fastwebsockets' own.

use fastwebsockets::WebSocketError;

use crate::frame_shim::Refused;

/// A close code and its reason.
pub type Violation = (u16, &'static str);

/// The close code for a frame-level error, if the peer is still there to
/// be told (`None`: the stream ended or failed, nobody to answer).
pub fn of(error: &WebSocketError) -> Option<Violation> {
    use WebSocketError as E;
    match error {
        E::IoError(error) => match Refused::of(error)? {
            Refused::Unmasked => Some((1002, "client frames must be masked")),
            Refused::InvalidUtf8 => Some((1007, "text message is not valid UTF-8")),
            Refused::BadHeader => Some((1002, "protocol error")),
            Refused::TooLarge => Some((1009, "message too big")),
        },
        E::FrameTooLarge => Some((1009, "message too big")),
        E::InvalidUTF8 => Some((1007, "text message is not valid UTF-8")),
        E::ReservedBitsNotZero
        | E::ControlFrameFragmented
        | E::PingFrameTooLarge
        | E::InvalidFragment
        | E::InvalidContinuationFrame
        | E::InvalidCloseFrame
        | E::InvalidValue => Some((1002, "protocol error")),
        _ => None,
    }
}
