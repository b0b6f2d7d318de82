//! First-party plugins built from `plugins/` by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The bytes of an embedded first-party plugin, by name.
pub fn embedded(name: &str) -> Option<&'static [u8]> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The path of a built plugin component, by name (including test-only
/// plugins that are not embedded).
pub fn artifact(name: &str) -> Option<&'static str> {
    ARTIFACTS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}
