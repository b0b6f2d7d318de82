//! The host's rules for channel names, so a plugin can check a name before
//! returning it (the host treats an invalid one as a broken plugin).

/// Longest channel name the host accepts, in bytes.
pub const MAX_LEN: usize = 255;

/// Most channels the host accepts for one record.
pub const MAX_PER_RECORD: usize = 1024;

/// Checks a channel name: 1 to 255 bytes without control characters.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("channel name is empty".into());
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "channel name is {} bytes (at most {MAX_LEN})",
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
    fn matches_the_host_rule() {
        assert!(validate("channel1").is_ok());
        assert!(validate("").is_err());
        assert!(validate("a\tb").is_err());
        assert!(validate(&"x".repeat(255)).is_ok());
        assert!(validate(&"x".repeat(256)).is_err());
    }
}
