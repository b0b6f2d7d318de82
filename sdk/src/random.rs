//! Randomness from the host's secure source (WASI `random`, which the host
//! grants every plugin: it reveals nothing about the machine).

/// A random `u64`.
pub fn u64() -> u64 {
    getrandom::u64().expect("the host provides WASI random")
}

/// A random integer in `low..=high` (the bounds may come in either order).
pub fn int_between(low: i64, high: i64) -> i64 {
    let (low, high) = if low <= high {
        (low, high)
    } else {
        (high, low)
    };
    let span = (high as i128 - low as i128 + 1) as u128;
    // Modulo bias is below 2^-64 for any span that fits an i64: irrelevant.
    (low as i128 + (u128::from(u64()) % span) as i128) as i64
}

/// A random float in `low..high`.
pub fn float_between(low: f64, high: f64) -> f64 {
    // 53 random bits: every representable step of a unit interval.
    let unit = (u64() >> 11) as f64 / (1u64 << 53) as f64;
    low + unit * (high - low)
}

/// A random (version 4) UUID in its usual hyphenated lower-case form.
pub fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&u64().to_le_bytes());
    bytes[8..].copy_from_slice(&u64().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_stay_within_their_bounds() {
        for _ in 0..1000 {
            let n = int_between(3, 5);
            assert!((3..=5).contains(&n), "{n}");
        }
        assert_eq!(int_between(7, 7), 7);
        let n = int_between(i64::MIN, i64::MAX);
        let _ = n;
    }

    #[test]
    fn floats_stay_within_their_bounds() {
        for _ in 0..1000 {
            let x = float_between(40_000.0, 50_000.0);
            assert!((40_000.0..50_000.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "{a}");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert_ne!(a, uuid_v4());
    }
}
