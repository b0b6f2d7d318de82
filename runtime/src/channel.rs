//! Channel names: what a router may return and a client may subscribe to.
//! The rules are `sluice_rules::channel`, which the SDK gives plugins too.

pub use sluice_rules::channel::{
    BROADCAST_CHANNEL, MAX_CHANNEL_LEN, MAX_CHANNELS_PER_RECORD, validate,
};
