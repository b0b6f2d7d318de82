//! A real Kafka-protocol broker process (tansu) on loopback, one per test.
//!
//! Each [`Broker`] runs `tansu broker` on its own free port on 127.0.0.1,
//! with its data in a SQLite file in its own temporary directory, and kills
//! the process when dropped. [`Broker::stop`] and [`Broker::restart`] keep
//! the port and the data, for broker-outage tests.
//!
//! [`Broker::start_secured`] adds TLS (a [`TlsTerminator`] in front of the
//! broker, which advertises the terminator's address) and SASL/SCRAM (a user
//! created with `tansu user create`, then the broker restarted with
//! `--authentication`); [`Broker::client_config`] then speaks both.
//!
//! Everything here blocks the calling thread (start-up waits, admin calls):
//! from an async test, call it before the server under test runs on the
//! same runtime, or inside `tokio::task::spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tempfile::TempDir;

use crate::tls_terminator::{self, ServerCert, TlsTerminator};
use crate::{installed_tool, ports};

/// How long a broker may take from spawn to answering metadata requests.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a created topic may take to show all its partitions in metadata.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at [`Broker::start`] with a fresh port when the broker dies early
/// (another process may take the free port between probe and bind).
const START_ATTEMPTS: usize = 3;
/// The database file, relative to the broker's directory (its working dir).
const DB_FILE: &str = "tansu.db";
/// The broker's stdout and stderr, appended across restarts.
const LOG_FILE: &str = "tansu.log";

/// Environment variables tansu reads as defaults for its flags; cleared so a
/// developer's environment cannot change the test broker.
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATA_LAKE",
];

/// The path of the tansu binary: `SLUICE_TANSU`, or where
/// `scripts/install-broker.sh` puts it.
pub fn tansu_binary() -> Result<PathBuf> {
    installed_tool("SLUICE_TANSU", "bin/tansu", "scripts/install-broker.sh")
}

/// How a broker is secured.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS in front of the broker.
    pub tls: Option<Tls>,
    /// The SASL/SCRAM user the broker requires.
    pub scram: Option<ScramUser>,
}

/// TLS in front of the broker.
#[derive(Debug, Clone, Copy)]
pub struct Tls {
    /// The certificate clients see.
    pub cert: ServerCert,
    /// Whether clients must present a certificate from the test CA.
    pub require_client_cert: bool,
}

/// A SCRAM user.
#[derive(Debug, Clone)]
pub struct ScramUser {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Scram,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Scram {
    /// librdkafka's name (`sasl.mechanism`).
    pub fn rdkafka_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Sluice's name (`security.mechanism`).
    pub fn sluice_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram-sha-256",
            Scram::Sha512 => "scram-sha-512",
        }
    }

    fn tansu_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }
}

/// A tansu broker process on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Broker {
    binary: PathBuf,
    dir: TempDir,
    /// The broker's own (plaintext) port.
    port: u16,
    child: Option<Child>,
    security: Security,
    /// Where clients connect when TLS is on.
    terminator: Option<TlsTerminator>,
    /// Whether the broker runs with `--authentication`.
    authenticating: bool,
}

impl Broker {
    /// Starts a broker on a free loopback port with empty storage and waits
    /// until it answers Kafka metadata requests.
    pub fn start() -> Result<Broker> {
        let binary = tansu_binary()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("sluice-broker-")
                .tempdir()
                .context("creating the broker's temporary directory")?;
            let mut broker = Broker {
                binary: binary.clone(),
                dir,
                port: ports::free_port(),
                child: None,
                security: Security::default(),
                terminator: None,
                authenticating: false,
            };
            match broker.spawn_and_wait() {
                Ok(()) => return Ok(broker),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("no attempt to start the broker")))
    }

    /// Starts a secured broker: behind a TLS terminator if `security.tls`,
    /// requiring `security.scram`'s user if set (created on a first,
    /// unauthenticated run, then the broker restarts with
    /// `--authentication`). Waits until it answers metadata requests.
    pub fn start_secured(security: Security) -> Result<Broker> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-broker-")
            .tempdir()
            .context("creating the broker's temporary directory")?;
        let port = ports::free_port();
        let terminator = match security.tls {
            Some(tls) => {
                let listener = TlsTerminator::bind()?;
                let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                Some(TlsTerminator::run(
                    listener,
                    upstream,
                    tls.cert,
                    tls.require_client_cert,
                )?)
            }
            None => None,
        };
        let mut broker = Broker {
            binary: tansu_binary()?,
            dir,
            port,
            child: None,
            security,
            terminator,
            authenticating: false,
        };
        broker.spawn_and_wait()?;
        if let Some(user) = broker.security.scram.clone() {
            broker.create_user(&user)?;
            broker.authenticating = true;
            broker.restart()?;
        }
        Ok(broker)
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`: the TLS terminator's
    /// port when TLS is on.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    /// Where clients connect (the TLS terminator when TLS is on).
    pub fn addr(&self) -> SocketAddr {
        match &self.terminator {
            Some(terminator) => terminator.addr(),
            None => SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
        }
    }

    /// The librdkafka properties a client needs for this broker's
    /// security (empty for a plaintext broker), with the test CA and
    /// client certificate.
    pub fn security_properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = Vec::new();
        let tls = self.security.tls.is_some();
        let sasl = self
            .authenticating
            .then_some(self.security.scram.as_ref())
            .flatten();
        let protocol = match (tls, sasl.is_some()) {
            (false, false) => return properties,
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        properties.push(("security.protocol", protocol.to_owned()));
        if tls {
            let path = |name: &str| tls_terminator::fixture(name).display().to_string();
            properties.push(("ssl.ca.location", path("ca.pem")));
            properties.push(("ssl.certificate.location", path("client.pem")));
            properties.push(("ssl.key.location", path("client-key.pem")));
        }
        if let Some(user) = sasl {
            properties.push(("sasl.mechanism", user.mechanism.rdkafka_name().to_owned()));
            properties.push(("sasl.username", user.username.clone()));
            properties.push(("sasl.password", user.password.clone()));
        }
        properties
    }

    fn create_user(&self, user: &ScramUser) -> Result<()> {
        let output = Command::new(&self.binary)
            .args(["user", "create"])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .args(["--mechanism", user.mechanism.tansu_name()])
            .args([&user.username, &user.password])
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .output()
            .context("running `tansu user create`")?;
        if !output.status.success() {
            bail!(
                "`tansu user create` failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The directory holding the broker's database and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the broker process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the broker process (SIGKILL, like a crash) and waits for it to
    /// exit. The port and the stored data are kept for [`Broker::restart`].
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker if it is running, starts it again on the same port
    /// with the same storage, and waits until it answers metadata requests.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn_and_wait()
    }

    /// Creates a topic with `partitions` partitions (replication factor 1)
    /// and waits until every partition has a leader in the metadata.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .context("creating a Kafka admin client")?;
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = futures_executor::block_on(admin.create_topics([&topic], &options))
            .with_context(|| format!("creating topic {name:?}"))?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("creating topic {topic:?} on {}: {code}", self.bootstrap());
            }
        }

        let consumer = self.metadata_client()?;
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        loop {
            let seen = consumer
                .fetch_metadata(Some(name), Duration::from_secs(2))
                .ok()
                .and_then(|metadata| {
                    let topic = metadata.topics().iter().find(|t| t.name() == name)?;
                    let led = topic
                        .partitions()
                        .iter()
                        .filter(|p| p.error().is_none() && p.leader() >= 0)
                        .count();
                    Some(topic.error().is_none() && led == partitions as usize)
                });
            if seen == Some(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "topic {name:?} did not show {partitions} led partitions within {TOPIC_TIMEOUT:?}"
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `max` bytes of the broker's log, for error messages.
    pub fn log_tail(&self, max: u64) -> String {
        read_tail(&self.dir.path().join(LOG_FILE), max)
    }

    /// Client settings that reach this broker: bootstrap servers, short
    /// reconnect backoffs (tests stop and restart brokers) and its
    /// [`Broker::security_properties`].
    pub fn client_config(&self) -> ClientConfig {
        let mut config = crate::kafka::client_config(&self.bootstrap());
        for (key, value) in self.security_properties() {
            config.set(key, value);
        }
        config
    }

    /// A client for readiness and metadata checks: [`Broker::client_config`]
    /// without certificate verification (a terminator with a certificate
    /// nobody trusts must not hide whether the broker is up).
    fn metadata_client(&self) -> Result<BaseConsumer> {
        let mut config = self.client_config();
        if self.security.tls.is_some() {
            config.set("enable.ssl.certificate.verification", "false");
        }
        config
            .create()
            .context("creating a Kafka client for metadata requests")
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        self.spawn()?;
        let result = self.wait_ready();
        if result.is_err() {
            self.stop();
        }
        result.with_context(|| {
            format!(
                "starting tansu on {} (log {}):\n{}",
                self.bootstrap(),
                self.dir.path().join(LOG_FILE).display(),
                self.log_tail(4096)
            )
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://{}", self.bootstrap());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(LOG_FILE))
            .context("opening the broker's log file")?;
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .args(["--cluster-id", "sluice-tests"])
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            // tansu resolves the database path against its working directory.
            .args(["--storage-engine", &format!("sqlite:{DB_FILE}")])
            .args(self.authenticating.then_some("--authentication"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for var in TANSU_ENV {
            command.env_remove(var);
        }
        // tansu logs through `RUST_LOG`; SLUICE_TANSU_LOG=debug shows more.
        let filter = std::env::var_os("SLUICE_TANSU_LOG").unwrap_or_else(|| "warn".into());
        command.env("RUST_LOG", filter);
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for the port to accept connections, then for a metadata answer
    /// that advertises this broker on loopback.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            let own = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            if TcpStream::connect_timeout(&own, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("port {} not open after {READY_TIMEOUT:?}", self.port);
            }
            thread::sleep(Duration::from_millis(50));
        }

        let client = self.metadata_client()?;
        loop {
            self.check_alive()?;
            match client.fetch_metadata(None, Duration::from_secs(1)) {
                Ok(metadata) => {
                    let advertised: Vec<String> = metadata
                        .brokers()
                        .iter()
                        .map(|b| format!("{}:{}", b.host(), b.port()))
                        .collect();
                    if advertised.contains(&self.bootstrap()) {
                        return Ok(());
                    }
                    bail!(
                        "broker advertises {advertised:?}, expected {}",
                        self.bootstrap()
                    );
                }
                Err(error) if Instant::now() > deadline => {
                    bail!("no metadata answer after {READY_TIMEOUT:?}: {error}")
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        let Some(child) = &mut self.child else {
            bail!("the broker is not running");
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            bail!("tansu exited: {status}");
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
