//! The host's rules for channel names, so a plugin can check a name before
//! returning it (the host treats an invalid one as a broken plugin). They
//! are the host's own code (crate `sluice-rules`), so they cannot drift.

pub use sluice_rules::channel::{
    BROADCAST_CHANNEL as BROADCAST, MAX_CHANNEL_LEN as MAX_LEN,
    MAX_CHANNELS_PER_RECORD as MAX_PER_RECORD, validate,
};
