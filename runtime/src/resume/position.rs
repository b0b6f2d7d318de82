//! Stream positions as tokens a client keeps and presents when it comes
//! back, signed so that it cannot make one up.
//!
//! A token is `<key id>.<body>.<mac>`, URL-safe (base64url, no padding):
//! the body holds when it was issued and, per (topic, partition), the next
//! offset to read; the MAC (HMAC-SHA256, first 16 bytes) covers the
//! pipeline it was issued for, the key id and the body, so a token of one
//! pipeline is refused by another. The first key signs; every key
//! verifies, so a new key can be put first while the old one still
//! verifies the tokens clients hold (see `docs/resume.md`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::kafka::Positions;

/// Bytes of the MAC kept in a token.
const MAC_LEN: usize = 16;
/// The body's format version.
const VERSION: u8 = 1;
/// Most tokens one reconnect may present (a position per partition and a
/// checkpoint).
pub const MAX_TOKENS: usize = 512;

/// A position: per (topic, partition), the next offset to read, as of
/// `issued_ms` (Unix time, milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// When the server issued it.
    pub issued_ms: u64,
    /// The next offset per (topic, partition).
    pub next: Positions,
}

/// Why a presented position is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a token at all.
    #[error("malformed resume position: {0}")]
    Malformed(&'static str),
    /// Signed with a key this server does not have (retired, or another
    /// deployment's).
    #[error("resume position signed with unknown key `{0}`")]
    UnknownKey(String),
    /// The MAC does not match: forged or changed.
    #[error("resume position has a bad signature")]
    BadSignature,
}

/// One signing key.
#[derive(Clone)]
pub struct Key {
    id: String,
    secret: Vec<u8>,
}

impl Key {
    /// A key named `id` (1 to 16 letters, digits, `-` or `_`; checked by
    /// the config) with this secret.
    pub fn new(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, ***)", self.id)
    }
}

/// Signs and verifies one pipeline's positions.
#[derive(Debug, Clone)]
pub struct Signer {
    /// What the MAC binds a token to: tenant and pipeline.
    scope: String,
    /// The first signs; all verify. Never empty.
    keys: Vec<Key>,
}

impl Signer {
    /// A signer for `tenant`'s `pipeline`; `None` without a key.
    pub fn new(tenant: &str, pipeline: &str, keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then(|| Self {
            scope: format!("{tenant}\0{pipeline}"),
            keys,
        })
    }

    /// The token of `position`, signed with the first key.
    pub fn sign(&self, position: &Position) -> String {
        let key = &self.keys[0];
        let body = encode_body(position);
        let mac = self.mac(key, &body);
        let mut token = String::with_capacity(key.id.len() + body.len() * 4 / 3 + 26);
        token.push_str(&key.id);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&body, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&mac[..MAC_LEN], &mut token);
        token
    }

    /// The position in `token`, if one of the keys signed it for this pipeline.
    pub fn verify(&self, token: &str) -> Result<Position, Refused> {
        let mut parts = token.split('.');
        let (Some(id), Some(body), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed("expected `key.body.mac`"));
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Refused::UnknownKey(id.chars().take(16).collect()))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Refused::Malformed("body is not base64url"))?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| Refused::Malformed("mac is not base64url"))?;
        if mac.len() != MAC_LEN {
            return Err(Refused::BadSignature);
        }
        let mut check = self.hmac(key);
        check.update(&body);
        // Constant time: a wrong MAC says nothing about how much matched.
        check
            .verify_truncated_left(&mac)
            .map_err(|_| Refused::BadSignature)?;
        decode_body(&body)
    }

    /// Verifies every token in a comma-separated list and merges them: per
    /// partition the furthest offset, issued when the newest was.
    pub fn verify_all(&self, tokens: &str) -> Result<Position, Refused> {
        let mut merged = Position {
            issued_ms: 0,
            next: Positions::new(),
        };
        for (i, token) in tokens.split(',').filter(|t| !t.is_empty()).enumerate() {
            if i == MAX_TOKENS {
                return Err(Refused::Malformed("too many tokens"));
            }
            let position = self.verify(token)?;
            merged.issued_ms = merged.issued_ms.max(position.issued_ms);
            for (key, next) in position.next {
                let entry = merged.next.entry(key).or_insert(next);
                *entry = (*entry).max(next);
            }
        }
        if merged.issued_ms == 0 {
            return Err(Refused::Malformed("no token"));
        }
        Ok(merged)
    }

    fn hmac(&self, key: &Key) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&key.secret).expect("HMAC takes any key length");
        mac.update(b"sluice-resume-v1\0");
        mac.update(self.scope.as_bytes());
        mac.update(b"\0");
        mac.update(key.id.as_bytes());
        mac.update(b"\0");
        mac
    }

    fn mac(&self, key: &Key, body: &[u8]) -> [u8; 32] {
        let mut mac = self.hmac(key);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// version, issued_ms, then per topic: name, entry count, (partition, next) pairs.
fn encode_body(position: &Position) -> Vec<u8> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((topic, partition), next) in &position.next {
        by_topic.entry(topic).or_default().push((*partition, *next));
    }
    let mut body = vec![VERSION];
    put_varint(&mut body, position.issued_ms);
    put_varint(&mut body, by_topic.len() as u64);
    for (topic, entries) in by_topic {
        // Topic names are at most 249 bytes (checked by the config).
        body.push(topic.len().min(255) as u8);
        body.extend_from_slice(&topic.as_bytes()[..topic.len().min(255)]);
        put_varint(&mut body, entries.len() as u64);
        for (partition, next) in entries {
            put_varint(&mut body, partition.max(0) as u64);
            put_varint(&mut body, next.max(0) as u64);
        }
    }
    body
}

fn decode_body(body: &[u8]) -> Result<Position, Refused> {
    let mut rest = body;
    if take(&mut rest, 1)? != [VERSION] {
        return Err(Refused::Malformed("unknown version"));
    }
    let issued_ms = varint(&mut rest)?;
    let mut next = Positions::new();
    for _ in 0..varint(&mut rest)? {
        let len = take(&mut rest, 1)?[0] as usize;
        let topic = std::str::from_utf8(take(&mut rest, len)?)
            .map_err(|_| Refused::Malformed("topic is not UTF-8"))?;
        for _ in 0..varint(&mut rest)? {
            let partition = i32::try_from(varint(&mut rest)?)
                .map_err(|_| Refused::Malformed("partition out of range"))?;
            let offset = i64::try_from(varint(&mut rest)?)
                .map_err(|_| Refused::Malformed("offset out of range"))?;
            next.insert((topic.to_owned(), partition), offset);
        }
    }
    if !rest.is_empty() {
        return Err(Refused::Malformed("trailing bytes"));
    }
    Ok(Position { issued_ms, next })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], Refused> {
    if rest.len() < n {
        return Err(Refused::Malformed("truncated"));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint(rest: &mut &[u8]) -> Result<u64, Refused> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = take(rest, 1)?[0];
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Refused::Malformed("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(keys: &[(&str, &str)]) -> Signer {
        let keys = keys
            .iter()
            .map(|(id, s)| Key::new(*id, s.as_bytes()))
            .collect();
        Signer::new("acme", "ticks", keys).unwrap()
    }

    fn position(issued_ms: u64, entries: &[(&str, i32, i64)]) -> Position {
        Position {
            issued_ms,
            next: entries
                .iter()
                .map(|(t, p, o)| (((*t).to_owned(), *p), *o))
                .collect(),
        }
    }

    #[test]
    fn a_signed_position_comes_back_as_it_was() {
        let signer = signer(&[("k1", "secret-one")]);
        let original = position(
            1_764_000_000_123,
            &[("ticks", 0, 41), ("ticks", 2, 7), ("audit.log", 0, 1 << 40)],
        );
        let token = signer.sign(&original);
        assert!(token.starts_with("k1."), "{token}");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(signer.verify(&token), Ok(original));
    }

    #[test]
    fn a_changed_forged_or_foreign_token_is_refused() {
        let signer = signer(&[("k1", "secret-one")]);
        let token = signer.sign(&position(5, &[("ticks", 0, 41)]));
        let (head, mac) = token.rsplit_once('.').unwrap();
        let (id, body) = head.split_once('.').unwrap();
        // Another body under the same MAC: a rewind to offset 0.
        let rewound = signer.sign(&position(5, &[("ticks", 0, 0)]));
        let other_body = rewound.split('.').nth(1).unwrap();
        assert_eq!(
            signer.verify(&format!("{id}.{other_body}.{mac}")),
            Err(Refused::BadSignature)
        );
        // A flipped MAC character, a short MAC.
        let mut flipped = mac.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            signer.verify(&format!("{head}.{flipped}")),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            signer.verify(&format!("{head}.{}", &mac[..8])),
            Err(Refused::BadSignature)
        );
        // Signed by another deployment's key of the same name, or for another pipeline.
        let stranger = super::Signer::new("acme", "ticks", vec![Key::new("k1", "other")]).unwrap();
        assert_eq!(stranger.verify(&token), Err(Refused::BadSignature));
        let neighbour =
            super::Signer::new("acme", "chat", vec![Key::new("k1", "secret-one")]).unwrap();
        assert_eq!(neighbour.verify(&token), Err(Refused::BadSignature));
        assert_eq!(
            signer.verify(&format!("k9.{body}.{mac}")),
            Err(Refused::UnknownKey("k9".into()))
        );
        for junk in ["", "k1", "k1.x", "k1.!!.??", "k1.a.b.c"] {
            assert!(
                matches!(
                    signer.verify(junk),
                    Err(Refused::Malformed(_)) | Err(Refused::BadSignature)
                ),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_rotated_key_still_verifies_what_it_signed() {
        let old = signer(&[("k1", "secret-one")]);
        let token = old.sign(&position(9, &[("ticks", 1, 3)]));
        let rotated = signer(&[("k2", "secret-two"), ("k1", "secret-one")]);
        assert_eq!(rotated.verify(&token).unwrap().next.len(), 1);
        assert!(rotated.sign(&position(9, &[])).starts_with("k2."));
        let retired = signer(&[("k2", "secret-two")]);
        assert_eq!(
            retired.verify(&token),
            Err(Refused::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn presented_tokens_merge_to_the_furthest_offset_per_partition() {
        let signer = signer(&[("k1", "s")]);
        let checkpoint = signer.sign(&position(100, &[("t", 0, 10), ("t", 1, 20), ("t", 2, 30)]));
        let record = signer.sign(&position(150, &[("t", 1, 25)]));
        let stale = signer.sign(&position(90, &[("t", 2, 5)]));
        let merged = signer
            .verify_all(&format!("{checkpoint},{record},{stale}"))
            .unwrap();
        assert_eq!(
            merged,
            position(150, &[("t", 0, 10), ("t", 1, 25), ("t", 2, 30)])
        );
        assert!(matches!(signer.verify_all(""), Err(Refused::Malformed(_))));
        let tampered = format!("{checkpoint},{}x", record);
        assert!(
            signer.verify_all(&tampered).is_err(),
            "one bad token refuses all"
        );
    }
}
