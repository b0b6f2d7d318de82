//! A consumed Kafka record as the host holds it: bytes shared, never copied
//! per subscriber.

use std::sync::Arc;

use bytes::Bytes;

/// One Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic it was read from.
    pub topic: Arc<str>,
    /// Partition within the topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Broker or producer timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The payload (empty for a tombstone).
    pub payload: Bytes,
    /// Headers in order: (name, value).
    pub headers: Vec<(String, Bytes)>,
    /// Why the record could not be decoded (a corrupt or unsupported
    /// compressed batch): it has no key, payload or headers, and the
    /// pipeline's poison policy applies to it.
    pub undecodable: Option<Arc<str>>,
}

impl Record {
    /// A record with just a key and payload, at offset 0 of `topic`/0.
    pub fn new(topic: &str, key: Option<&[u8]>, payload: &[u8]) -> Self {
        Self {
            topic: Arc::from(topic),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            key: key.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(payload),
            headers: Vec::new(),
            undecodable: None,
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}
