//! `sluice produce`: sends one record to a Kafka topic and waits for the
//! broker's acknowledgement, so trying a pipeline needs no other Kafka
//! client (the embedded broker's address is what `sluice run` prints).

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rdkafka::message::{DeliveryResult, Message as _};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

/// How long to wait for the acknowledgement (also librdkafka's
/// `message.timeout.ms`, so a missing broker is reported, not waited on).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Arguments of `sluice produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bootstrap servers, `host:port[,host:port]`.
    #[arg(long)]
    pub brokers: String,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// The record key (none when absent).
    #[arg(long)]
    pub key: Option<String>,
    /// The record value.
    pub value: String,
}

/// The delivery report of the one record sent.
#[derive(Default)]
struct Report(Mutex<Option<Result<(i32, i64), String>>>);

impl ClientContext for Report {}

impl ProducerContext for Report {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.to_string()),
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }
}

/// Produces the record; prints where it was stored.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let producer: BaseProducer<Report> = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        .set("log_level", "3")
        .create_with_context(Report::default())
        .context("cannot create a Kafka producer")?;
    let mut record = BaseRecord::to(&args.topic).payload(args.value.as_bytes());
    if let Some(key) = &args.key {
        record = record.key(key.as_bytes());
    }
    producer
        .send(record)
        .map_err(|(error, _)| anyhow!("cannot produce to `{}`: {error}", args.topic))?;
    // Waits for the report; a timeout leaves the report empty.
    let _ = producer.flush(DELIVERY_TIMEOUT + Duration::from_secs(1));
    let report = producer
        .context()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match report {
        Some(Ok((partition, offset))) => {
            println!(
                "produced to {} (partition {partition}, offset {offset})",
                args.topic
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(error)) => Err(anyhow!(
            "the broker at {} did not take the record for `{}`: {error}",
            args.brokers,
            args.topic
        )),
        None => Err(anyhow!(
            "no answer from the broker at {} within {:?}",
            args.brokers,
            DELIVERY_TIMEOUT
        )),
    }
}
