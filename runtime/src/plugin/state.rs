//! What each plugin's store holds, and the host side of the imports: the
//! `host` interface (log, config, clock), `presence` (handlers) and the
//! `record-batch` resource.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, presence, types};
use super::error::PluginId;
use super::limits::MemoryCap;
use super::stdio::{LogSink, Stream};
use crate::record::Record;

/// The records a router call may read, held by the resource table for the
/// length of one call.
pub struct RecordBatch(pub Arc<[Record]>);

/// Store data of one plugin instance.
pub struct PluginState {
    pub(crate) id: Arc<PluginId>,
    config_json: Arc<str>,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) stderr: LogSink,
    /// Who is connected, for a handler of a running pipeline.
    pub(crate) presence: Option<Arc<dyn super::Presence>>,
}

impl PluginState {
    /// A fresh state: no filesystem, network, environment or arguments; the
    /// guest's stdout/stderr go to the log.
    pub fn new(id: Arc<PluginId>, config_json: Arc<str>, memory_cap: usize) -> Self {
        let stderr = LogSink::new(id.clone(), Stream::Stderr);
        let wasi = WasiCtx::builder()
            .stdout(LogSink::new(id.clone(), Stream::Stdout))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            id,
            config_json,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                cap: memory_cap,
                exceeded: false,
            },
            stderr,
            presence: None,
        }
    }

    fn batch(&self, batch: &Resource<RecordBatch>) -> wasmtime::Result<&Arc<[Record]>> {
        Ok(&self.table.get(batch)?.0)
    }

    fn record(&self, batch: &Resource<RecordBatch>, index: u32) -> wasmtime::Result<&Record> {
        let records = self.batch(batch)?;
        records.get(index as usize).ok_or_else(|| {
            wasmtime::format_err!(
                "record index {index} out of range (batch of {})",
                records.len()
            )
        })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        let id = &self.id;
        let (plugin, pipeline, tenant) = (&id.plugin, &id.pipeline, &id.tenant);
        match level {
            host::Level::Trace => tracing::trace!(%plugin, %pipeline, %tenant, "{message}"),
            host::Level::Debug => tracing::debug!(%plugin, %pipeline, %tenant, "{message}"),
            host::Level::Info => tracing::info!(%plugin, %pipeline, %tenant, "{message}"),
            host::Level::Warn => tracing::warn!(%plugin, %pipeline, %tenant, "{message}"),
            host::Level::Error => tracing::error!(%plugin, %pipeline, %tenant, "{message}"),
        }
        Ok(())
    }

    fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.config_json.to_string())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(now.as_millis() as u64)
    }
}

/// Without a pipeline (a plugin instance on its own, as in a unit test),
/// nobody is connected.
impl presence::Host for PluginState {
    fn connection_count(&mut self) -> wasmtime::Result<u32> {
        Ok(self.presence.as_ref().map_or(0, |p| p.connection_count()))
    }

    fn channel_count(&mut self, channel: String) -> wasmtime::Result<u32> {
        Ok(self
            .presence
            .as_ref()
            .map_or(0, |p| p.channel_count(&channel)))
    }

    fn channel_members(
        &mut self,
        channel: String,
        limit: u32,
    ) -> wasmtime::Result<Vec<presence::Member>> {
        let members = self
            .presence
            .as_ref()
            .map(|p| p.channel_members(&channel, limit))
            .unwrap_or_default();
        Ok(members
            .into_iter()
            .take(limit as usize)
            .map(|m| presence::Member {
                id: m.id,
                principal: m.principal,
                node: m.node,
            })
            .collect())
    }
}

impl types::Host for PluginState {}

impl types::HostRecordBatch for PluginState {
    fn len(&mut self, batch: Resource<RecordBatch>) -> wasmtime::Result<u32> {
        Ok(self.batch(&batch)?.len() as u32)
    }

    fn key(
        &mut self,
        batch: Resource<RecordBatch>,
        index: u32,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.record(&batch, index)?.key.as_ref().map(|k| k.to_vec()))
    }

    fn payload(&mut self, batch: Resource<RecordBatch>, index: u32) -> wasmtime::Result<Vec<u8>> {
        Ok(self.record(&batch, index)?.payload.to_vec())
    }

    fn header(
        &mut self,
        batch: Resource<RecordBatch>,
        index: u32,
        name: String,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self
            .record(&batch, index)?
            .header(&name)
            .map(|v| v.to_vec()))
    }

    fn headers(
        &mut self,
        batch: Resource<RecordBatch>,
        index: u32,
    ) -> wasmtime::Result<Vec<types::Header>> {
        let record = self.record(&batch, index)?;
        Ok(record
            .headers
            .iter()
            .map(|(name, value)| types::Header {
                name: name.clone(),
                value: value.to_vec(),
            })
            .collect())
    }

    fn meta(
        &mut self,
        batch: Resource<RecordBatch>,
        index: u32,
    ) -> wasmtime::Result<types::RecordMeta> {
        let record = self.record(&batch, index)?;
        Ok(types::RecordMeta {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
        })
    }

    fn drop(&mut self, batch: Resource<RecordBatch>) -> wasmtime::Result<()> {
        self.table.delete(batch)?;
        Ok(())
    }
}
