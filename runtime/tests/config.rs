//! `pipeline.toml` checks: snapshots of the diagnostics for broken files
//! (each with `file:line:col`) and of the checked config for valid ones.
//! Fixtures are in `tests/config/`.

use std::env::VarError;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use sluice_runtime::config::{Config, Diagnostics, PluginSource, loader};
use sluice_runtime::plugin::{HostOptions, PluginHost};

/// One host for every test: compiling the engine is the slow part.
fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(HostOptions {
            cache_dir: None,
            ..HostOptions::default()
        })
        .expect("plugin host")
    })
}

/// The environment the fixtures see: a fixed map, not the process's.
fn env(name: &str) -> Result<String, VarError> {
    match name {
        "WS_PASSWORD" => Ok("testpass".into()),
        "ALICE_PASSWORD" => Ok("alice-secret".into()),
        "ACME_KAFKA_PASSWORD" => Ok("kafka-secret".into()),
        "SLUICE_ADMIN_TOKEN" => Ok("operator-token-0123456789".into()),
        "ACME_ADMIN_TOKEN" => Ok("acme-admin-token-0123".into()),
        "SHORT_ADMIN_TOKEN" => Ok("tooshort".into()),
        "SLUICE_BROKERS" => Ok("k1:9092,k2:9092".into()),
        "MAX_CONNECTIONS" => Ok("250".into()),
        // Looks like a number, but a topic is text: it stays a string.
        "INPUT_TOPIC" => Ok("12345".into()),
        "NOT_A_NUMBER" => Ok("lots".into()),
        "ADDRESS_TYPO" => Ok("localhost:80".into()),
        "OUT_OF_RANGE" => Ok("-5".into()),
        _ => Err(VarError::NotPresent),
    }
}

fn fixture(name: &str) -> String {
    format!("tests/config/{name}.toml")
}

fn validate(name: &str) -> Result<Config, Diagnostics> {
    loader()
        .env(&env)
        .plugins(host())
        .load(Path::new(&fixture(name)))
}

fn load(name: &str) -> Result<Config, Diagnostics> {
    loader().env(&env).load(Path::new(&fixture(name)))
}

fn errors(name: &str) -> String {
    match validate(name) {
        Ok(_) => panic!("{name} should be invalid"),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

/// The checked config as text, without component hashes (they change
/// whenever a plugin is rebuilt).
fn describe(config: &Config) -> String {
    let mut out = String::new();
    for l in &config.listeners {
        writeln!(
            out,
            "listener {} {} tls={:?} origins={:?}",
            l.name, l.address, l.tls, l.allowed_origins
        )
        .unwrap();
    }
    writeln!(
        out,
        "kafka {} {:?}",
        config.kafka.brokers, config.kafka.properties
    )
    .unwrap();
    for t in &config.tenants {
        writeln!(
            out,
            "tenant {} kafka {} {:?} admin_token={:?}",
            t.name,
            t.kafka.brokers,
            t.kafka.properties,
            t.admin_token.as_ref().map(|s| s.expose())
        )
        .unwrap();
        if t.namespace != Default::default() || t.quotas != Default::default() {
            writeln!(out, "  {:?}", t.namespace).unwrap();
            writeln!(out, "  {:?}", t.quotas).unwrap();
        }
    }
    if let Some(cluster) = &config.cluster {
        writeln!(out, "{cluster:?}").unwrap();
        for t in &config.tenants {
            writeln!(out, "  bus of {}: {}", t.name, cluster.bus_topic(t)).unwrap();
        }
    }
    if let Some(admin) = &config.admin {
        writeln!(
            out,
            "admin {} token={:?} ({:?})",
            admin.address,
            admin.token.expose(),
            admin.token
        )
        .unwrap();
    }
    for p in &config.pipelines {
        writeln!(
            out,
            "pipeline {} tenant={} listener={} path={}{}",
            p.name,
            p.tenant,
            p.serving.listener,
            p.serving.path,
            p.serving
                .host
                .as_ref()
                .map_or_else(String::new, |h| format!(" host={h}"))
        )
        .unwrap();
        writeln!(out, "  source {:?}", p.source).unwrap();
        writeln!(out, "  sink {:?}", p.serving.sink).unwrap();
        if let Some(chaos) = &p.serving.chaos {
            writeln!(out, "  chaos {chaos:?}").unwrap();
        }
        if let Some(record) = &p.serving.record {
            writeln!(out, "  record {record:?}").unwrap();
        }
        if let Some(tick) = p.serving.tick {
            writeln!(out, "  tick {tick:?}").unwrap();
        }
        if !p.transforms.is_empty() {
            let directions: Vec<_> = p.transforms.iter().map(|t| t.direction).collect();
            writeln!(out, "  transform directions {directions:?}").unwrap();
        }
        for (slot, plugin) in p.plugins() {
            let source = match &plugin.source {
                PluginSource::Builtin(name) => format!("builtin {name}"),
                PluginSource::File(path) => format!("file {}", path.display()),
                PluginSource::Native(native) => format!("native {}", native.name()),
            };
            assert!(!plugin.bytes.is_empty() && plugin.hash.len() == 64);
            writeln!(
                out,
                "  {slot}: {source} as {:?}, config {}, {:?}",
                plugin.role, plugin.config_json, plugin.limits
            )
            .unwrap();
        }
    }
    writeln!(out, "plugins {:?}", config.plugins).unwrap();
    out
}

#[test]
fn valid_seed000() {
    let config = validate("valid_seed000").expect("valid");
    insta::assert_snapshot!(describe(&config));
}

#[test]
fn valid_every_key() {
    let config = validate("valid_every_key").expect("valid");
    insta::assert_snapshot!(describe(&config));
}

#[test]
fn valid_tenants() {
    // Default plugin limits are lowered to the tenant's caps.
    let config = validate("valid_tenants").expect("valid");
    insta::assert_snapshot!(describe(&config));
}

#[test]
fn tenant_namespaces_topics_and_quotas() {
    insta::assert_snapshot!(errors("tenant_namespaces"));
}

#[test]
fn the_repository_pipeline_is_valid() {
    let config = loader()
        .env(&env)
        .plugins(host())
        .load(Path::new("../pipeline.toml"));
    let config = config.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.pipelines.len(), 1);
}

#[test]
fn syntax_errors_are_all_reported() {
    insta::assert_snapshot!(errors("syntax_errors"));
}

#[test]
fn unknown_fields() {
    insta::assert_snapshot!(errors("unknown_field"));
}

#[test]
fn chaos_errors() {
    insta::assert_snapshot!(errors("chaos_errors"));
}

#[test]
fn transform_directions() {
    // A direction the pipeline has nothing for, and one that is not a direction.
    insta::assert_snapshot!(errors("transform_directions"));
}

#[test]
fn resume_errors() {
    insta::assert_snapshot!(errors("resume_errors"));
}

#[test]
fn cluster_errors() {
    let all = ["cluster_errors", "cluster_topics", "cluster_alone"]
        .map(|name| format!("# {name}\n{}", errors(name)))
        .join("\n");
    insta::assert_snapshot!(all);
}

#[test]
fn wrong_types() {
    insta::assert_snapshot!(errors("wrong_type"));
}

#[test]
fn duplicate_names() {
    insta::assert_snapshot!(errors("duplicate_names"));
}

#[test]
fn unknown_references() {
    insta::assert_snapshot!(errors("unknown_references"));
}

#[test]
fn bad_templates() {
    insta::assert_snapshot!(errors("bad_templates"));
}

#[test]
fn missing_env() {
    insta::assert_snapshot!(errors("missing_env"));
}

#[test]
fn plugin_files() {
    insta::assert_snapshot!(errors("plugin_files"));
}

#[test]
fn wrong_role() {
    insta::assert_snapshot!(errors("wrong_role"));
}

#[test]
fn native_plugins() {
    insta::assert_snapshot!(errors("native_plugins"));
}

#[test]
fn init_rejects_config() {
    insta::assert_snapshot!(errors("init_rejects"));
}

#[test]
fn limits_out_of_range() {
    insta::assert_snapshot!(errors("limits_out_of_range"));
}

#[test]
fn pipeline_shapes() {
    insta::assert_snapshot!(errors("pipeline_shapes"));
}

#[test]
fn many_errors_at_once() {
    insta::assert_snapshot!(errors("many_errors"));
}

#[test]
fn admin_errors() {
    insta::assert_snapshot!(errors("bad_admin"));
}

#[test]
fn admin_table_without_token() {
    insta::assert_snapshot!(errors("admin_incomplete"));
}

#[test]
fn admin_token_without_admin_table() {
    insta::assert_snapshot!(errors("admin_token_alone"));
}

#[test]
fn load_checks_no_plugin_roles_or_init() {
    // Only `validate` compiles plugins; `load` reads their bytes.
    load("wrong_role").expect("schema-valid");
    load("init_rejects").expect("schema-valid");
    insta::assert_snapshot!(load("plugin_files").unwrap_err().to_string());
}

#[test]
fn unreadable_file() {
    let diagnostics = load("does_not_exist").unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    let text = diagnostics.to_string();
    assert!(
        text.starts_with("tests/config/does_not_exist.toml: cannot read the file: "),
        "{text}"
    );
}

#[test]
fn kafka_security() {
    use sluice_runtime::config::{Compression, Sasl, SaslMechanism, SecurityProtocol};
    let config = validate("kafka_security").expect("valid");
    let tenant = |name: &str| config.tenant(name).expect(name);
    let shared = config.kafka.security.as_ref().expect("shared security");
    assert_eq!(
        shared.protocol,
        SecurityProtocol::SaslSsl,
        "a mechanism implies sasl_ssl"
    );
    let Some(Sasl::Password {
        mechanism,
        username,
        password,
    }) = &shared.sasl
    else {
        panic!("password SASL: {shared:?}");
    };
    assert_eq!(*mechanism, SaslMechanism::ScramSha512);
    assert_eq!(username, "sluice");
    assert_eq!(password.expose(), "kafka-secret");
    let tls = shared.tls.as_ref().expect("TLS");
    assert!(
        tls.ca
            .as_ref()
            .unwrap()
            .ends_with("tests/config/kafka-certs/ca.pem")
    );
    let (cert, key) = tls.client.as_ref().expect("client certificate");
    assert!(
        cert.ends_with("kafka-certs/client.pem") && key.ends_with("kafka-certs/client-key.pem")
    );
    assert!(tls.verify_hostname, "on by default");
    assert_eq!(config.kafka.compression, Compression::Zstd);

    assert_eq!(
        tenant("inherits").kafka,
        config.kafka,
        "no override: the shared settings"
    );
    let confluent = tenant("confluent").kafka.security.clone().unwrap();
    assert!(matches!(
        confluent.sasl,
        Some(Sasl::Password {
            mechanism: SaslMechanism::Plain,
            ..
        })
    ));
    assert_eq!(confluent.tls.as_ref().unwrap().ca, None, "the system store");
    assert_eq!(
        tenant("confluent").kafka.compression,
        Compression::Zstd,
        "inherited"
    );
    let oauth = &tenant("oauth").kafka;
    let Some(Sasl::OAuthBearer { token, principal }) = &oauth.security.as_ref().unwrap().sasl
    else {
        panic!("OAUTHBEARER: {oauth:?}");
    };
    assert_eq!(
        (token.expose(), principal.as_str()),
        ("kafka-secret", "svc")
    );
    assert!(
        !oauth
            .security
            .as_ref()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .verify_hostname
    );
    assert_eq!(oauth.compression, Compression::Lz4);
    let plain = tenant("plain").kafka.security.clone().unwrap();
    assert_eq!(
        (plain.protocol, plain.sasl, plain.tls),
        (SecurityProtocol::Plaintext, None, None)
    );
    assert!(
        !format!("{:?}", config.kafka).contains("kafka-secret"),
        "Debug hides secrets"
    );
}

#[test]
fn kafka_security_errors() {
    insta::assert_snapshot!(errors("kafka_security_errors"));
}

#[test]
fn env_everywhere() {
    use sluice_runtime::config::{Brokers, StartFrom};
    let config = validate("env_everywhere").expect("valid");
    assert_eq!(
        config.kafka.brokers,
        Brokers::List(vec!["k1:9092".into(), "k2:9092".into()])
    );
    let listener = &config.listeners[0];
    assert_eq!(
        listener.address.to_string(),
        "127.0.0.1:8080",
        "the default"
    );
    assert_eq!(listener.limits.max_connections, 250, "a number from text");
    assert_eq!(
        config.listeners[1].address.to_string(),
        "127.0.0.1:250",
        "address + port"
    );
    let pipeline = &config.pipelines[0];
    assert_eq!(pipeline.name, "ticks");
    let source = pipeline.source.as_ref().unwrap();
    assert_eq!(source.topics, ["12345", "audit"], "a topic stays text");
    assert_eq!(source.start, StartFrom::Earliest);
    assert_eq!(pipeline.serving.outbox.capacity, 64);
}

#[test]
fn env_errors() {
    insta::assert_snapshot!(errors("env_errors"));
}
