//! Channel names: what a router may return, a handler may join or
//! broadcast to, and a client may subscribe to. The host refuses anything
//! else from a plugin, so plugins check their names with the same rules.

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = 255;

/// Most channels one record may be routed to.
pub const MAX_CHANNELS_PER_RECORD: usize = 1024;

/// The channel a connection subscribes to when its path template has no
/// `{channel}` parameter: every record routed to `*` reaches it.
pub const BROADCAST_CHANNEL: &str = "*";

/// Checks a channel name: 1 to 255 bytes of UTF-8 without control
/// characters (so it can always appear in a log line or a path).
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("channel name is empty".into());
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(format!(
            "channel name is {} bytes (at most {MAX_CHANNEL_LEN})",
            name.len()
        ));
    }
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "channel name {name:?} contains control character {c:?}"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_rejects_the_rest() {
        for ok in ["channel1", BROADCAST_CHANNEL, "orders.eu/1", "é"] {
            assert_eq!(validate(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(validate(""), Err("channel name is empty".into()));
        assert_eq!(
            validate("a\tb"),
            Err(r#"channel name "a\tb" contains control character '\t'"#.into())
        );
        assert!(validate("a\nb").is_err());
        assert!(validate("a\u{7f}b").is_err());
    }

    #[test]
    fn the_length_limit_counts_bytes() {
        assert!(validate(&"x".repeat(MAX_CHANNEL_LEN)).is_ok());
        assert_eq!(
            validate(&"x".repeat(MAX_CHANNEL_LEN + 1)),
            Err("channel name is 256 bytes (at most 255)".into())
        );
        // 128 two-byte characters: 256 bytes.
        assert!(validate(&"é".repeat(128)).is_err());
    }
}
