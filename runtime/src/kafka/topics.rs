//! Creating a topic the host itself needs (the cluster bus), when the
//! brokers let it: an existing topic is fine as it is.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{ClientSettings, KafkaError};

/// How long the brokers have to create it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `topic` with `partitions` partitions unless it exists; returns
/// whether it was created. Replication is the brokers' default.
pub async fn ensure_topic(
    settings: &ClientSettings,
    topic: &str,
    partitions: i32,
) -> Result<bool, KafkaError> {
    let admin: AdminClient<DefaultClientContext> =
        settings
            .producer_config(&[])
            .create()
            .map_err(|source| KafkaError::Client {
                client: "admin client",
                source,
            })?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|source| KafkaError::Create {
            topic: topic.to_owned(),
            reason: source.to_string(),
        })?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(KafkaError::Create {
            topic: topic.to_owned(),
            reason: code.to_string(),
        }),
        None => Ok(false),
    }
}
