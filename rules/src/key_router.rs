//! The `key-router` plugin's logic: a record with key `K` goes to channel
//! `K`, or to `template` with `{key}` replaced by `K`; `all_channel`
//! receives every record as well.

use serde::Deserialize;

/// What a template's key is written as.
pub const PLACEHOLDER: &str = "{key}";

/// The plugin's `config` table (every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The channel, with one `{key}` standing for the record key.
    pub template: Option<String>,
    /// A channel that receives every record as well.
    pub all_channel: Option<String>,
}

/// Where one record goes: the channel its key names (read by the host) if
/// `key_channel`, and `channels`. Each side turns it into its own `Route`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// The record key names a channel; the host reads it itself.
    pub key_channel: bool,
    /// Further channels, in order.
    pub channels: Vec<String>,
}

/// A configured key router.
#[derive(Debug, Clone)]
pub struct KeyRouter {
    /// The template split at `{key}`: prefix and suffix.
    affixes: Option<(String, String)>,
    all_channel: Option<String>,
}

impl KeyRouter {
    /// Checks the settings; `Err` says what is wrong, in the words the
    /// operator sees at load time.
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let affixes = match &settings.template {
            None => None,
            Some(t) => {
                let (prefix, suffix) = t
                    .split_once(PLACEHOLDER)
                    .ok_or_else(|| format!("template {t:?} has no {PLACEHOLDER} placeholder"))?;
                if suffix.contains(PLACEHOLDER) {
                    return Err(format!("template {t:?} has more than one {PLACEHOLDER}"));
                }
                Some((prefix.to_owned(), suffix.to_owned()))
            }
        };
        if settings.all_channel.as_deref() == Some("") {
            return Err("all_channel must not be empty".into());
        }
        Ok(Self {
            affixes,
            all_channel: settings.all_channel.clone(),
        })
    }

    /// One record's routing. `key` is called only with a template: without
    /// one the host reads the key itself (`key_channel`), so a plugin need
    /// not copy it. A key that is not UTF-8 is left to the host, which
    /// treats the record as poison; a record without a key goes to
    /// `all_channel` only.
    pub fn route<K: AsRef<[u8]>>(&self, key: impl FnOnce() -> Option<K>) -> Routing {
        let mut routing = match &self.affixes {
            None => Routing {
                key_channel: true,
                channels: Vec::new(),
            },
            Some((prefix, suffix)) => match key() {
                Some(key) => match std::str::from_utf8(key.as_ref()) {
                    Ok(key) => Routing {
                        key_channel: false,
                        channels: vec![format!("{prefix}{key}{suffix}")],
                    },
                    Err(_) => Routing {
                        key_channel: true,
                        channels: Vec::new(),
                    },
                },
                None => Routing::default(),
            },
        };
        if let Some(all) = &self.all_channel {
            routing.channels.push(all.clone());
        }
        routing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(template: Option<&str>, all_channel: Option<&str>) -> KeyRouter {
        KeyRouter::new(&Settings {
            template: template.map(Into::into),
            all_channel: all_channel.map(Into::into),
        })
        .expect("valid settings")
    }

    fn routing(key_channel: bool, channels: &[&str]) -> Routing {
        Routing {
            key_channel,
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn without_a_template_the_host_reads_the_key() {
        let plain = router(None, None);
        let untouched = || -> Option<&[u8]> { panic!("the key was read") };
        assert_eq!(plain.route(untouched), routing(true, &[]));
        let with_all = router(None, Some("*"));
        assert_eq!(with_all.route(untouched), routing(true, &["*"]));
    }

    #[test]
    fn a_template_names_the_channel() {
        let templated = router(Some("orders.{key}-x"), Some("all"));
        assert_eq!(
            templated.route(|| Some(b"a")),
            routing(false, &["orders.a-x", "all"])
        );
        assert_eq!(
            templated.route(|| Some(Vec::new())),
            routing(false, &["orders.-x", "all"])
        );
        // No key: all_channel only; not UTF-8: left to the host.
        assert_eq!(templated.route(|| None::<&[u8]>), routing(false, &["all"]));
        assert_eq!(
            templated.route(|| Some([0xff, 0xfe])),
            routing(true, &["all"])
        );
        assert_eq!(
            router(Some("{key}"), None).route(|| None::<&[u8]>),
            routing(false, &[])
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let error = |template: Option<&str>, all: Option<&str>| {
            KeyRouter::new(&Settings {
                template: template.map(Into::into),
                all_channel: all.map(Into::into),
            })
            .expect_err("refused")
        };
        assert_eq!(
            error(Some("x"), None),
            "template \"x\" has no {key} placeholder"
        );
        assert_eq!(
            error(Some("{key}.{key}"), None),
            "template \"{key}.{key}\" has more than one {key}"
        );
        assert_eq!(error(None, Some("")), "all_channel must not be empty");
    }
}
