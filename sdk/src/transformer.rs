//! The `transformer` role: change, filter or validate messages.

use crate::{Config, Context, FrameKind, Message, Outcome};

impl Message {
    /// A text message with this payload.
    pub fn text(payload: impl Into<String>) -> Self {
        Message {
            kind: FrameKind::Text,
            payload: payload.into().into_bytes(),
            key: None,
            headers: Vec::new(),
        }
    }

    /// A binary message with this payload.
    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Message {
            kind: FrameKind::Binary,
            payload: payload.into(),
            key: None,
            headers: Vec::new(),
        }
    }

    /// A text message holding `value` as JSON.
    pub fn json(value: &serde_json::Value) -> Self {
        Message {
            kind: FrameKind::Text,
            payload: crate::json::to_payload(value),
            key: None,
            headers: Vec::new(),
        }
    }

    /// The payload as UTF-8, if it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// A transformer plugin. Implement it and call
/// [`export_transformer!`](crate::export_transformer).
pub trait Transformer: Sized + 'static {
    /// Builds the transformer from its configuration.
    fn new(config: &Config) -> Result<Self, String>;

    /// Transforms one message: keep it, replace it (an empty list filters it
    /// out) or reject it with a reason.
    fn transform(&mut self, msg: Message, ctx: Context) -> Outcome;
}

/// Exports a [`Transformer`] implementation as the component's
/// `transformer` world.
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ty) => {
        const _: () = {
            struct SluiceExport;
            impl $crate::bindings::transformer::exports::sluice::plugin::transform::Guest for SluiceExport {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    let config = $crate::Config::load()?;
                    $crate::__state::install(<$plugin as $crate::Transformer>::new(&config)?);
                    Ok(())
                }
                fn transform(msg: $crate::Message, ctx: $crate::Context) -> $crate::Outcome {
                    $crate::__state::with(|p: &mut $plugin| $crate::Transformer::transform(p, msg, ctx))
                }
            }
            $crate::bindings::transformer::__export_transformer_world!(SluiceExport with_types_in $crate::bindings::transformer);
        };
    };
}
