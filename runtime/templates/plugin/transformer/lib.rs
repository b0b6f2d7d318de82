//! `{{name}}`: a Sluice transformer. Each message must be a JSON object; it
//! is passed on wrapped as `{"channel": ..., "<field>": <the object>}`
//! (`field` defaults to `data`). Anything else is rejected with a reason:
//! an outbound record is then poison (the pipeline's `on_poison` policy),
//! an inbound client message gets the reason back.

use serde::Deserialize;
use sluice_sdk::{Config, Context, Message, Outcome, Transformer, json, serde_json};

/// This plugin's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The name of the field holding the original message.
    #[serde(default = "default_field")]
    field: String,
}

fn default_field() -> String {
    "data".into()
}

struct Wrap {
    field: String,
}

impl Transformer for Wrap {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.field.is_empty() || settings.field == "channel" {
            return Err(format!("`field` may not be {:?}", settings.field));
        }
        Ok(Wrap {
            field: settings.field,
        })
    }

    fn transform(&mut self, msg: Message, ctx: Context) -> Outcome {
        match json::parse(&msg.payload) {
            Ok(value) if value.is_object() => {
                let mut wrapped = serde_json::Map::new();
                wrapped.insert("channel".into(), ctx.channel.into());
                wrapped.insert(self.field.clone(), value);
                Outcome::Replace(vec![Message::json(&wrapped.into())])
            }
            Ok(_) => Outcome::Reject("expected a JSON object".into()),
            Err(reason) => Outcome::Reject(reason),
        }
    }
}

sluice_sdk::export_transformer!(Wrap);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Direction;

    fn wrap(config: &str, payload: &str) -> Outcome {
        let mut plugin = Wrap::new(&Config::from_json(config).unwrap()).unwrap();
        let ctx = Context {
            direction: Direction::Outbound,
            channel: "orders".into(),
            principal_id: None,
        };
        plugin.transform(Message::text(payload), ctx)
    }

    #[test]
    fn an_object_is_wrapped_with_its_channel() {
        let Outcome::Replace(messages) = wrap(r#"{"field": "order"}"#, r#"{"id": 7}"#) else {
            panic!("expected a replacement");
        };
        let value: serde_json::Value = serde_json::from_slice(&messages[0].payload).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"channel": "orders", "order": {"id": 7}})
        );
    }

    #[test]
    fn anything_but_an_object_is_rejected() {
        assert!(matches!(wrap("{}", "[1, 2]"), Outcome::Reject(_)));
        assert!(matches!(wrap("{}", "not json"), Outcome::Reject(_)));
    }
}
