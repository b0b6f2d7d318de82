//! Channel names: what a router may return and a client may subscribe to.

/// The channel a connection subscribes to when its path template has no
/// `{channel}` parameter: every record routed to `*` reaches it.
pub const BROADCAST_CHANNEL: &str = "*";

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = 255;

/// Most channels one record may be routed to.
pub const MAX_CHANNELS_PER_RECORD: usize = 1024;

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
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "channel name {name:?} contains control character {c:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_rejects_the_rest() {
        assert!(validate("channel1").is_ok());
        assert!(validate("*").is_ok());
        assert!(validate("orders.eu/1").is_ok());
        assert!(validate("").is_err());
        assert!(validate("a\nb").is_err());
        assert!(validate(&"x".repeat(256)).is_err());
        assert!(validate(&"x".repeat(255)).is_ok());
    }
}
