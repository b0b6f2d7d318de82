//! The `router` role: which channels each Kafka record goes to.

use crate::{Config, RecordBatch, RecordMeta, Route};

/// One record of a batch, read on demand: each accessor copies only what it
/// returns into the plugin.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    batch: &'a RecordBatch,
    index: u32,
}

impl<'a> Record<'a> {
    /// The record at `index` of `batch`.
    pub fn new(batch: &'a RecordBatch, index: u32) -> Self {
        Self { batch, index }
    }

    /// The record's key, if it has one.
    pub fn key(&self) -> Option<Vec<u8>> {
        self.batch.key(self.index)
    }

    /// The record's payload.
    pub fn payload(&self) -> Vec<u8> {
        self.batch.payload(self.index)
    }

    /// The value of the record's first header called `name`.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.batch.header(self.index, name)
    }

    /// Topic, partition, offset and timestamp.
    pub fn meta(&self) -> RecordMeta {
        self.batch.meta(self.index)
    }
}

impl Route {
    /// Deliver nowhere.
    pub fn drop() -> Self {
        Route {
            key_channel: false,
            channels: Vec::new(),
        }
    }

    /// Deliver to the channel named by the record key; the host reads the
    /// key, so nothing is copied.
    pub fn to_key() -> Self {
        Route {
            key_channel: true,
            channels: Vec::new(),
        }
    }

    /// Deliver to these channels.
    pub fn to(channels: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Route {
            key_channel: false,
            channels: channels.into_iter().map(Into::into).collect(),
        }
    }
}

/// A router plugin. Implement it and call [`export_router!`](crate::export_router).
pub trait Router: Sized + 'static {
    /// Builds the router from its configuration; an error stops the pipeline
    /// from starting and is shown to the operator.
    fn new(config: &Config) -> Result<Self, String>;

    /// Routes one record.
    fn route_record(&mut self, record: Record<'_>) -> Route;

    /// Routes a whole batch: one route per record, in order. Override it to
    /// share work across the batch.
    fn route(&mut self, batch: &RecordBatch) -> Vec<Route> {
        (0..batch.len())
            .map(|i| self.route_record(Record::new(batch, i)))
            .collect()
    }
}

/// Exports a [`Router`] implementation as the component's `router` world.
#[macro_export]
macro_rules! export_router {
    ($plugin:ty) => {
        const _: () = {
            struct SluiceExport;
            impl $crate::bindings::router::exports::sluice::plugin::routing::Guest for SluiceExport {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    let config = $crate::Config::load()?;
                    $crate::__state::install(<$plugin as $crate::Router>::new(&config)?);
                    Ok(())
                }
                fn route_batch(batch: &$crate::RecordBatch) -> ::std::vec::Vec<$crate::Route> {
                    $crate::__state::with(|p: &mut $plugin| $crate::Router::route(p, batch))
                }
            }
            $crate::bindings::router::__export_router_world!(SluiceExport with_types_in $crate::bindings::router);
        };
    };
}
