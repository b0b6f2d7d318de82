//! The plugin stages of the record path: transforms, then the router, then
//! the channels and frame of each record. Where the results go is an
//! [`Outlet`]: the running pipeline's publishes to its hub; `sluice test`
//! and `sluice plugin test` collect them, so they run records through
//! exactly the code a running pipeline does.

use std::fmt;
use std::sync::Arc;

use crate::channel::BROADCAST_CHANNEL;
use crate::config::Format;
use crate::hub::{Frame, Kind, Origin};
use crate::plugin::{
    Direction, FrameKind, Header, Message, Outcome, PluginError, PluginInstance, TransformContext,
};
use crate::record::Record;

/// Why a record cannot be delivered as it is.
#[derive(Debug, Clone, Copy)]
pub enum Poison<'a> {
    /// A transform or the router failed (trap, timeout, memory, invalid
    /// return); a router failure poisons its whole batch.
    Failed(&'a PluginError),
    /// A transform rejected the record with this reason.
    Rejected(&'a str),
    /// Its batch could not be decoded (corrupt or unsupported compression).
    Undecodable(&'a str),
    /// The route asks for the key channel and the key is not UTF-8.
    KeyNotUtf8,
    /// The route asks for the key channel and the key breaks the channel
    /// name rule (empty, over 255 bytes, control characters): why.
    KeyNotAChannel(&'a str),
    /// A text pipeline and a payload that is not UTF-8.
    NotUtf8Text,
}

impl fmt::Display for Poison<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Poison::Failed(error) => write!(f, "{error}"),
            Poison::Rejected(reason) => write!(f, "rejected by a transform: {reason}"),
            Poison::Undecodable(reason) => write!(f, "its batch cannot be decoded: {reason}"),
            Poison::KeyNotUtf8 => f.write_str("key is not UTF-8"),
            Poison::KeyNotAChannel(why) => write!(f, "key is not a channel name: {why}"),
            Poison::NotUtf8Text => f.write_str("payload is not UTF-8 in a text pipeline"),
        }
    }
}

/// Where the stages' results go.
pub trait Outlet {
    /// `record` (as the transforms left it) goes to `channels` as `frame`;
    /// `channels` is empty when the router sent it nowhere.
    fn deliver(&mut self, record: &Record, frame: &Frame, channels: &[&str]);
    /// The transforms filtered `record` out.
    fn filtered(&mut self, record: &Record);
    /// `record` is poison; `Err` is the reason to stop the pipeline.
    fn poisoned(&mut self, record: &Record, why: Poison<'_>) -> Result<(), String>;
}

/// A pipeline's transforms and router, and how its records are framed.
pub struct Stages {
    /// Transform instances, applied in order.
    pub transforms: Vec<PluginInstance>,
    /// The router (`None`: every record goes to the broadcast channel).
    pub router: Option<PluginInstance>,
    /// The source's frame format.
    pub format: Format,
}

impl Stages {
    /// Runs one batch: transform poisons first, then each record's route in
    /// batch order. `Err` is an outlet's reason to stop.
    pub fn run(&mut self, records: &[Record], out: &mut impl Outlet) -> Result<(), String> {
        let mut ready = Vec::with_capacity(records.len());
        for record in records {
            if let Some(reason) = &record.undecodable {
                out.poisoned(record, Poison::Undecodable(reason))?;
                continue;
            }
            match self.transform(record) {
                Ok(records) if records.is_empty() => out.filtered(record),
                Ok(records) => ready.extend(records),
                Err(Failure::Plugin(error)) => out.poisoned(record, Poison::Failed(&error))?,
                Err(Failure::Rejected(reason)) => {
                    out.poisoned(record, Poison::Rejected(&reason))?
                }
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let batch: Arc<[Record]> = ready.into();
        let routes = match &mut self.router {
            None => None,
            Some(router) => match router.route_batch(batch.clone()) {
                Ok(routes) => Some(routes),
                Err(error) => {
                    for record in batch.iter() {
                        out.poisoned(record, Poison::Failed(&error))?;
                    }
                    return Ok(());
                }
            },
        };
        let mut channels: Vec<&str> = Vec::new();
        for (i, record) in batch.iter().enumerate() {
            // The last of the records a transform made of one consumed record.
            let last = batch.get(i + 1).is_none_or(|next| {
                next.offset != record.offset
                    || next.partition != record.partition
                    || next.topic != record.topic
            });
            let frame = match frame(self.format, record, last) {
                Ok(frame) => frame,
                Err(why) => {
                    out.poisoned(record, why)?;
                    continue;
                }
            };
            channels.clear();
            match routes.as_ref().map(|r| &r[i]) {
                None => channels.push(BROADCAST_CHANNEL),
                Some(route) => {
                    if let (true, Some(key)) = (route.key_channel, record.key.as_deref()) {
                        match std::str::from_utf8(key) {
                            Ok(key) => match crate::channel::validate(key) {
                                Ok(()) => channels.push(key),
                                Err(why) => {
                                    out.poisoned(record, Poison::KeyNotAChannel(&why))?;
                                    continue;
                                }
                            },
                            Err(_) => {
                                out.poisoned(record, Poison::KeyNotUtf8)?;
                                continue;
                            }
                        }
                    }
                    for channel in &route.channels {
                        if !channels.contains(&channel.as_str()) {
                            channels.push(channel);
                        }
                    }
                }
            }
            out.deliver(record, &frame, &channels);
        }
        Ok(())
    }

    /// Runs the transforms; a record comes out as zero or more records.
    fn transform(&mut self, record: &Record) -> Result<Vec<Record>, Failure> {
        let mut records = vec![record.clone()];
        for transform in &mut self.transforms {
            let mut next = Vec::with_capacity(records.len());
            for record in records {
                let msg = message_of(&record);
                let ctx = TransformContext {
                    direction: Direction::Outbound,
                    channel: String::new(),
                    principal_id: None,
                };
                match transform.transform(&msg, &ctx).map_err(Failure::Plugin)? {
                    Outcome::Keep => next.push(record),
                    Outcome::Replace(messages) => {
                        next.extend(messages.into_iter().map(|m| record_from(&record, m)));
                    }
                    Outcome::Reject(reason) => return Err(Failure::Rejected(reason)),
                }
            }
            records = next;
        }
        Ok(records)
    }
}

enum Failure {
    Plugin(PluginError),
    Rejected(String),
}

fn frame(format: Format, record: &Record, last: bool) -> Result<Frame, Poison<'static>> {
    let utf8 = || std::str::from_utf8(&record.payload).is_ok();
    let kind = match format {
        Format::Binary => Kind::Binary,
        Format::Text if utf8() => Kind::Text,
        Format::Text => return Err(Poison::NotUtf8Text),
        Format::Auto if utf8() => Kind::Text,
        Format::Auto => Kind::Binary,
    };
    let origin = Origin {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        last,
    };
    Ok(Frame::record(kind, record.payload.clone(), origin))
}

fn message_of(record: &Record) -> Message {
    let kind = if std::str::from_utf8(&record.payload).is_ok() {
        FrameKind::Text
    } else {
        FrameKind::Binary
    };
    Message {
        kind,
        payload: record.payload.to_vec(),
        key: record.key.as_ref().map(|k| k.to_vec()),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.to_vec(),
            })
            .collect(),
    }
}

/// A transform's output as a record at the original's position. A message
/// without a key keeps the original key, so routing by key still works.
fn record_from(original: &Record, msg: Message) -> Record {
    Record {
        key: msg.key.map(Into::into).or_else(|| original.key.clone()),
        payload: msg.payload.into(),
        headers: msg
            .headers
            .into_iter()
            .map(|h| (h.name, h.value.into()))
            .collect(),
        ..original.clone()
    }
}
