//! The in-tree fuzzing harness behind `tests/fuzz_protocol.rs` (cargo-fuzz
//! needs a nightly compiler; this runs under plain `cargo test`):
//!
//! - [`Rng`]: a small seeded generator, one per case, so any case can be
//!   replayed alone;
//! - [`Settings`]: seed, case count, time budget and replay list from the
//!   environment (`SLUICE_FUZZ_*`);
//! - [`drive`]: runs cases in concurrent batches, each under a hang guard,
//!   checks the server after every batch, and fails with the seed, the
//!   case's bytes in hex and the command that replays it;
//! - the wire: client frames as bytes ([`frame`]), the server's frames
//!   checked against RFC 6455 ([`hear`]), HTTP responses
//!   ([`http_response`]), `Sec-WebSocket-Accept` (SHA-1 and base64 written
//!   here) and raw DEFLATE (flate2, as the server uses it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A hang guard for one read or one step of a case (the server answers
/// in milliseconds; only a broken server waits this long).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The hang guard of a whole case.
pub const CASE_PATIENCE: Duration = Duration::from_secs(30);

/// Close codes the server may send of its own accord (README, "Connection
/// lifecycle and close codes"; 1001 is for shutdown and 1013 for a full
/// handler queue, neither of which a fuzz case can cause).
pub const SERVER_CLOSE_CODES: [u16; 7] = [1000, 1002, 1003, 1007, 1008, 1009, 1011];

/// SplitMix64: tiny, fast, and good enough to pick fuzz inputs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator of case `index` of `target`, independent of every
    /// other case.
    pub fn for_case(seed: u64, target: &str, index: usize) -> Self {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for b in target.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Self(seed ^ hash ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.u64();
        rng
    }

    /// The next 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        (self.u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.u64() as u8
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// What a fuzz run does, from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The target's name (`frames`, `handshake`, ...): its test is `fuzz_{target}`.
    pub target: &'static str,
    /// `SLUICE_FUZZ_SEED` (decimal or `0x` hex), else from the clock.
    pub seed: u64,
    /// `SLUICE_FUZZ_CASES`: how many cases at most.
    pub cases: usize,
    /// `SLUICE_FUZZ_SECS`: no new batch starts after this long.
    pub budget: Duration,
    /// `SLUICE_FUZZ_ONLY=target:index,...`: replay just these cases (of
    /// this target; a list naming only other targets runs none here).
    pub only: Option<Vec<usize>>,
    /// `SLUICE_FUZZ_STRICT=1`: RFC 6455 to the letter, no tolerance for
    /// the server's known leniencies.
    pub strict: bool,
}

/// The seed the test command runs with.
const DEFAULT_SEED: u64 = 20_261_122;

impl Settings {
    /// Reads the environment; `cases` and `secs` are this target's defaults.
    pub fn from_env(target: &'static str, cases: usize, secs: f64) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        // A fixed default keeps the test command deterministic (a finding
        // fails every run until fixed, never one in ten); `random` explores.
        let seed = match var("SLUICE_FUZZ_SEED").as_deref() {
            None => DEFAULT_SEED,
            Some(text) if text != "random" => parse_u64(text)
                .unwrap_or_else(|| panic!("SLUICE_FUZZ_SEED={text:?} is not a number")),
            Some(_) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Rng::new(now.as_nanos() as u64 ^ u64::from(std::process::id())).u64()
            }
        };
        let cases = var("SLUICE_FUZZ_CASES").map_or(cases, |text| {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("SLUICE_FUZZ_CASES={text:?} is not a count"))
        });
        let secs = var("SLUICE_FUZZ_SECS").map_or(secs, |text| {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("SLUICE_FUZZ_SECS={text:?} is not a number"))
        });
        let only = var("SLUICE_FUZZ_ONLY").map(|list| {
            list.split(',')
                .filter_map(|item| {
                    let (name, index) = item.trim().split_once(':')?;
                    (name == target).then(|| {
                        index
                            .parse()
                            .unwrap_or_else(|_| panic!("SLUICE_FUZZ_ONLY: bad index in {item:?}"))
                    })
                })
                .collect()
        });
        let strict = var("SLUICE_FUZZ_STRICT").is_some_and(|v| v != "0");
        let settings = Self {
            target,
            seed,
            cases,
            budget: Duration::from_secs_f64(secs),
            only,
            strict,
        };
        match &settings.only {
            Some(list) => println!("fuzz {target}: seed {seed}, replaying cases {list:?}"),
            None => println!(
                "fuzz {target}: seed {seed} (SLUICE_FUZZ_SEED), up to {cases} cases \
                 (SLUICE_FUZZ_CASES) or {secs} s (SLUICE_FUZZ_SECS){}",
                if strict { ", strict" } else { "" }
            ),
        }
        settings
    }

    /// The cases to run, in order.
    pub fn indices(&self) -> Vec<usize> {
        self.only
            .clone()
            .unwrap_or_else(|| (0..self.cases).collect())
    }

    /// The generator of case `index`.
    pub fn rng(&self, index: usize) -> Rng {
        Rng::for_case(self.seed, self.target, index)
    }

    /// The command that replays `indices`.
    pub fn replay(&self, indices: &[usize]) -> String {
        let list: Vec<String> = indices
            .iter()
            .map(|i| format!("{}:{i}", self.target))
            .collect();
        format!(
            "SLUICE_FUZZ_SEED={} SLUICE_FUZZ_ONLY={} cargo test -p sluice-runtime \
             --test fuzz_protocol fuzz_{} -- --nocapture",
            self.seed,
            list.join(","),
            self.target
        )
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// One case that broke the contract.
#[derive(Debug)]
pub struct Failure {
    /// Its index (replay it with [`Settings::replay`]).
    pub index: usize,
    /// What went wrong.
    pub what: String,
    /// What the generator made, in words.
    pub about: String,
    /// The exact bytes sent (or the input, in-process).
    pub bytes: Vec<u8>,
}

/// Fails the test with everything needed to reproduce: the seed, each
/// failing case's bytes in hex (also written to a file), the replay command.
pub fn fail(settings: &Settings, failures: &[Failure], suspects: &[usize]) -> ! {
    let mut text = format!(
        "fuzz target `{}` (seed {}) found {} problem(s)\n",
        settings.target,
        settings.seed,
        failures.len()
    );
    for failure in failures.iter().take(4) {
        let _ = writeln!(text, "\n--- case {}: {}", failure.index, failure.what);
        let _ = writeln!(text, "case: {}", failure.about);
        if !failure.bytes.is_empty() {
            let file = std::env::temp_dir().join(format!(
                "sluice-fuzz-{}-{}-{}.bin",
                settings.target, settings.seed, failure.index
            ));
            let saved = match std::fs::write(&file, &failure.bytes) {
                Ok(()) => format!(", saved in {}", file.display()),
                Err(_) => String::new(),
            };
            let _ = writeln!(
                text,
                "bytes ({} sent{saved}):\n{}",
                failure.bytes.len(),
                hex_block(&failure.bytes)
            );
        }
    }
    if failures.len() > 4 {
        let _ = writeln!(text, "\n... and {} more", failures.len() - 4);
    }
    let mut indices: Vec<usize> = failures.iter().map(|f| f.index).collect();
    if indices.is_empty() {
        indices = suspects.to_vec();
    }
    indices.sort_unstable();
    indices.dedup();
    let _ = writeln!(
        text,
        "\nreproduce: {}\n(the bytes above are exactly what the client sent after the \
         upgrade (frames) or on a fresh connection (handshake); each case is generated \
         from the seed and its index alone)",
        settings.replay(&indices)
    );
    panic!("{text}");
}

/// `bytes` as hex, 32 bytes a line; long inputs keep their head and tail.
pub fn hex_block(bytes: &[u8]) -> String {
    const LIMIT: usize = 1024;
    let line = |chunk: &[u8]| -> String { chunk.iter().map(|b| format!("{b:02x}")).collect() };
    let lines = |part: &[u8]| -> Vec<String> { part.chunks(32).map(line).collect() };
    if bytes.len() <= LIMIT {
        return lines(bytes).join("\n");
    }
    let (head, tail) = (&bytes[..LIMIT - 256], &bytes[bytes.len() - 256..]);
    format!(
        "{}\n... {} bytes left out ...\n{}",
        lines(head).join("\n"),
        bytes.len() - LIMIT,
        lines(tail).join("\n")
    )
}

/// What a case's future resolves to: what the server did, in a word or
/// two (tallied for the summary), or how it broke the contract.
pub type CaseFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// A generated case, ready to run.
pub struct Prepared {
    /// What the generator made, in words.
    pub about: String,
    /// The exact bytes the case sends.
    pub bytes: Vec<u8>,
    /// Runs it.
    pub run: CaseFuture,
}

/// Runs `settings`' cases in batches of `batch`, `concurrency` at a time,
/// each under [`CASE_PATIENCE`]; after each batch `alive` must pass. Fails
/// the test (see [`fail`]) at the end of the first batch with a problem.
pub async fn drive(
    settings: &Settings,
    batch: usize,
    concurrency: usize,
    prepare: impl Fn(usize, Rng) -> Prepared,
    alive: impl Fn() -> CaseFuture,
) {
    let started = Instant::now();
    let indices = settings.indices();
    let mut ran = 0;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in indices.chunks(batch) {
        if settings.only.is_none() && started.elapsed() > settings.budget {
            break;
        }
        let mut failures = Vec::new();
        let mut waiting = chunk.iter().copied();
        let mut running = tokio::task::JoinSet::new();
        let mut inputs: HashMap<usize, (String, Vec<u8>)> = HashMap::new();
        loop {
            while running.len() < concurrency {
                let Some(index) = waiting.next() else { break };
                let prepared = prepare(index, settings.rng(index));
                inputs.insert(index, (prepared.about, prepared.bytes));
                running.spawn(guarded(index, prepared.run, CASE_PATIENCE));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (index, result) = joined.expect("guarded cases do not panic");
            ran += 1;
            let (about, bytes) = inputs.remove(&index).unwrap_or_default();
            match result {
                Ok(outcome) => *seen.entry(outcome).or_default() += 1,
                Err(what) => failures.push(Failure {
                    index,
                    what,
                    about,
                    bytes,
                }),
            }
        }
        if let (_, Err(what)) = guarded(usize::MAX, alive(), CASE_PATIENCE).await {
            failures.push(Failure {
                index: chunk[0],
                what: format!(
                    "after the batch of cases {}..={}, the server is not serving: {what}",
                    chunk[0],
                    chunk[chunk.len() - 1]
                ),
                about: "one of this batch's cases (replay the batch, then halve it)".into(),
                bytes: Vec::new(),
            });
            fail(settings, &failures, chunk);
        }
        if !failures.is_empty() {
            fail(settings, &failures, chunk);
        }
    }
    let seen: Vec<String> = seen.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!(
        "fuzz {}: {ran} cases in {:.1?}, all within the contract (seed {}); outcomes: {}",
        settings.target,
        started.elapsed(),
        settings.seed,
        seen.join(", ")
    );
}

/// `run` under a hang guard, with a panic turned into an error.
async fn guarded(
    index: usize,
    run: CaseFuture,
    patience: Duration,
) -> (usize, Result<String, String>) {
    let result = match tokio::time::timeout(patience, AssertUnwindSafe(run).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(format!("the check panicked: {}", panic_text(&*panic))),
        Err(_) => Err(format!(
            "hang: the case did not finish within {patience:?} (the hang guard)"
        )),
    };
    (index, result)
}

/// Runs each case (its input from `generate`, then `check` on it, with
/// the case's generator for any further choices) in a worker thread,
/// so a panic or a hang is reported with the input.
pub fn run_cases(
    settings: &Settings,
    generate: impl Fn(&mut Rng) -> (Vec<u8>, String) + Send + 'static,
    check: impl Fn(&[u8], &mut Rng) -> Result<String, String> + Send + 'static,
) {
    enum Event {
        Start(usize, Vec<u8>, String),
        Done(Result<String, String>),
    }
    let (tx, rx) = mpsc::channel();
    let worker_settings = settings.clone();
    let worker = std::thread::spawn(move || {
        let started = Instant::now();
        for index in worker_settings.indices() {
            if worker_settings.only.is_none() && started.elapsed() > worker_settings.budget {
                break;
            }
            let mut rng = worker_settings.rng(index);
            let (bytes, about) = generate(&mut rng);
            let _ = tx.send(Event::Start(index, bytes.clone(), about));
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| check(&bytes, &mut rng)))
                .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_text(&*panic))));
            let _ = tx.send(Event::Done(result));
        }
    });
    let started = Instant::now();
    let mut ran = 0;
    let mut current = None;
    let mut failures = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Start(index, bytes, about)) => current = Some((index, bytes, about)),
            Ok(Event::Done(result)) => {
                ran += 1;
                match (result, current.take()) {
                    (Ok(outcome), _) => *seen.entry(outcome).or_default() += 1,
                    (Err(what), Some((index, bytes, about))) => failures.push(Failure {
                        index,
                        what,
                        about,
                        bytes,
                    }),
                    (Err(_), None) => unreachable!("a result without its case"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (index, bytes, about) = current.take().unwrap_or_default();
                failures.push(Failure {
                    index,
                    what: "hang: one case ran for 30 s".into(),
                    about,
                    bytes,
                });
                fail(settings, &failures, &[index]);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    worker.join().expect("the worker catches panics");
    if !failures.is_empty() {
        fail(settings, &failures, &[]);
    }
    let seen: Vec<String> = seen.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!(
        "fuzz {}: {ran} cases in {:.1?}, nothing found (seed {}); outcomes: {}",
        settings.target,
        started.elapsed(),
        settings.seed,
        seen.join(", ")
    );
}

/// The message of a panic payload.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Checks the server process `pid` still runs, under `max_rss_kib`; then
/// that a well-behaved client still gets its echo on `/p/alive` and
/// `/healthz` answers 200.
pub fn alive(addr: String, pid: u32, max_rss_kib: u64) -> CaseFuture {
    Box::pin(async move {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("the server process is gone ({e})"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        if field("State:").starts_with('Z') {
            return Err("the server process exited (crash?)".into());
        }
        let rss: u64 = field("VmRSS:")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if rss > max_rss_kib {
            return Err(format!(
                "the server's resident memory is {rss} KiB, over {max_rss_kib} KiB"
            ));
        }
        let check = tokio::spawn(async move {
            use tokio_tungstenite::tungstenite::Message;
            let mut client = super::ws::Client::connect(&format!("ws://{addr}/p/alive")).await;
            match client.next().await {
                Message::Text(text) if text.starts_with("open ") => {}
                other => return Err(format!("expected the greeting, got {other:?}")),
            }
            client.send(Message::text("~still there?")).await;
            match client.next().await {
                Message::Text(text) if text.as_str() == "~still there?" => {}
                other => return Err(format!("expected the echo, got {other:?}")),
            }
            client.close(1000, "").await;
            let (status, body) = super::http_get(&addr, "/healthz").await;
            if status != 200 {
                return Err(format!("/healthz answered {status}: {body}"));
            }
            Ok(String::new())
        });
        match check.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => Err(format!(
                "a well-behaved client failed: {}",
                panic_text(&*error.into_panic())
            )),
            Err(error) => Err(error.to_string()),
        }
    })
}

// ---------------------------------------------------------------- frames

/// How a client frame states its payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// The shortest encoding of the true length (the only valid one).
    Minimal,
    /// The 16-bit form (126), whatever the length.
    Wide16,
    /// The 64-bit form (127), whatever the length.
    Wide64,
    /// This length, in its shortest form, whatever the payload (a lie).
    Declared(u64),
}

/// A frame as bytes: the payload is masked with `mask` when given.
pub fn frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: Len,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len() as u64;
    let (code, extended): (u8, Vec<u8>) = match len {
        Len::Wide16 => (126, (n as u16).to_be_bytes().to_vec()),
        Len::Wide64 => (127, n.to_be_bytes().to_vec()),
        Len::Minimal | Len::Declared(_) => {
            let n = if let Len::Declared(d) = len { d } else { n };
            match n {
                0..=125 => (n as u8, Vec::new()),
                126..=0xffff => (126, (n as u16).to_be_bytes().to_vec()),
                _ => (127, n.to_be_bytes().to_vec()),
            }
        }
    };
    out.push(masked | code);
    out.extend_from_slice(&extended);
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A frame header read off the wire.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub fin: bool,
    /// RSV1..3 as the top three bits of a 3-bit number (RSV1 = 4).
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub len: u64,
    /// Bytes of extended length: 0, 2 or 8.
    pub extended: usize,
    /// Bytes of the whole header.
    pub size: usize,
}

impl Header {
    /// Whether the length was not written in its shortest form.
    pub fn non_minimal(&self) -> bool {
        (self.extended == 2 && self.len < 126) || (self.extended == 8 && self.len <= 0xffff)
    }
}

/// The header at the start of `bytes`: `Err(needed)` if incomplete, where
/// `needed` is 2 when not even the first two bytes are there.
pub fn parse_header(bytes: &[u8]) -> Result<Header, usize> {
    if bytes.len() < 2 {
        return Err(2);
    }
    let (b0, b1) = (bytes[0], bytes[1]);
    let extended = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let masked = b1 & 0x80 != 0;
    let size = 2 + extended + if masked { 4 } else { 0 };
    if bytes.len() < size {
        return Err(size);
    }
    let len = match extended {
        2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        8 => u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
        _ => u64::from(b1 & 0x7f),
    };
    let mask = masked.then(|| {
        let at = 2 + extended;
        [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
    });
    Ok(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        mask,
        len,
        extended,
        size,
    })
}

/// `payload` unmasked with `mask`.
pub fn unmask(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    match mask {
        Some(key) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => payload.to_vec(),
    }
}

/// Whether a peer may send close code `code` (RFC 6455 §7.4; 1014 is
/// registered later and left out, as fastwebsockets does).
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// What the server said after the upgrade, its frames checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// Data messages: (text, payload), inflated when compressed.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Pong payloads.
    pub pongs: Vec<Vec<u8>>,
    /// Pings the server sent.
    pub pings: usize,
    /// The close frame's payload, if it sent one.
    pub close: Option<Vec<u8>>,
}

impl Heard {
    /// The close code, if the server's close frame has one.
    pub fn close_code(&self) -> Option<u16> {
        self.close
            .as_ref()
            .filter(|p| p.len() >= 2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
    }
}

/// Reads the server's side of a WebSocket conversation and checks every
/// frame: unmasked, RSV1 only on the first frame of a compressed data
/// message (when `compressed`), known opcodes, control frames final and at
/// most 125 bytes, a valid close frame whose code `allowed` accepts,
/// nothing after it, text that is UTF-8. `cut`: the connection was reset,
/// so a partial frame at the end is not the server's fault.
pub fn hear(
    bytes: &[u8],
    compressed: bool,
    allowed: impl Fn(u16) -> bool,
    cut: bool,
) -> Result<Heard, String> {
    let mut heard = Heard::default();
    let mut at = 0;
    let mut partial: Option<(bool, bool, Vec<u8>)> = None;
    while at < bytes.len() {
        let whole =
            |h: &Header| bytes.len() - at >= h.size && (bytes.len() - at - h.size) as u64 >= h.len;
        let header = match parse_header(&bytes[at..]) {
            Ok(h) if whole(&h) => h,
            _ if cut => break,
            _ => {
                return Err(format!(
                    "the server's stream ends inside a frame at byte {at}: {}",
                    hex_block(&bytes[at..bytes.len().min(at + 64)])
                ));
            }
        };
        let frame = format!("server frame at byte {at} ({header:?})");
        if heard.close.is_some() {
            return Err(format!("{frame} follows the server's close frame"));
        }
        if header.mask.is_some() {
            return Err(format!("{frame} is masked"));
        }
        let payload = &bytes[at + header.size..at + header.size + header.len as usize];
        at += header.size + header.len as usize;
        let first_data = matches!(header.opcode, 1 | 2);
        if header.rsv != 0 && !(compressed && header.rsv == 4 && first_data) {
            return Err(format!("{frame} has reserved bits set"));
        }
        match header.opcode {
            8..=10 => {
                if !header.fin || payload.len() > 125 {
                    return Err(format!(
                        "{frame} is a control frame that is fragmented or over 125 bytes \
                         ({} bytes; RFC 6455 §5.5)",
                        payload.len()
                    ));
                }
                match header.opcode {
                    8 => {
                        if payload.len() == 1 {
                            return Err(format!("{frame}: a close frame with a 1-byte payload"));
                        }
                        if payload.len() >= 2 {
                            let code = u16::from_be_bytes([payload[0], payload[1]]);
                            if !sendable_close_code(code) || !allowed(code) {
                                return Err(format!("{frame}: close code {code} is not allowed"));
                            }
                            if std::str::from_utf8(&payload[2..]).is_err() {
                                return Err(format!("{frame}: the close reason is not UTF-8"));
                            }
                        }
                        heard.close = Some(payload.to_vec());
                    }
                    9 => heard.pings += 1,
                    _ => heard.pongs.push(payload.to_vec()),
                }
            }
            0..=2 => {
                let (text, deflated, mut data) = match (header.opcode, partial.take()) {
                    (0, Some(started)) => started,
                    (0, None) => return Err(format!("{frame} continues no message")),
                    (_, Some(_)) => return Err(format!("{frame} starts a message inside one")),
                    (opcode, None) => (opcode == 1, header.rsv == 4, Vec::new()),
                };
                data.extend_from_slice(payload);
                if !header.fin {
                    partial = Some((text, deflated, data));
                    continue;
                }
                if deflated {
                    data = inflate(&data, 16 << 20).map_err(|e| {
                        format!("{frame}: bad compressed data from the server: {e}")
                    })?;
                }
                if text && std::str::from_utf8(&data).is_err() {
                    return Err(format!("{frame}: a text message that is not UTF-8"));
                }
                heard.messages.push((text, data));
            }
            other => return Err(format!("{frame} has opcode {other}")),
        }
    }
    if partial.is_some() && !cut {
        return Err("the server's stream ends inside a fragmented message".into());
    }
    Ok(heard)
}

// ---------------------------------------------------------------- model

/// A compressed payload a generator made, and the message it carries.
pub type Deflated = (Vec<u8>, Vec<u8>);

/// What the contract says happens.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The echoes (and `bye`, the handler's on-close reply, before a
    /// close echo), in order.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Pongs, in order.
    pub pongs: Vec<Vec<u8>>,
    /// How the conversation ends.
    pub end: End,
}

/// How a conversation ends.
#[derive(Clone, Debug)]
pub enum End {
    /// The client's close frame comes back as it was.
    Echo(Vec<u8>),
    /// The server closes with one of these codes (a violation: all
    /// messages before it are answered first).
    Close(BTreeSet<u16>),
    /// The stream ended mid-way: the server drops the connection
    /// without a close frame, having answered a prefix.
    Eof,
    /// The model cannot tell (compressed data it did not make, a text
    /// message that is a handler command): only the protocol rules.
    Loose,
}

/// The main expectation, others that are also right, and the strict
/// one (RFC 6455 to the letter) where the server is knowingly lenient.
pub struct Prediction {
    /// What this server does.
    pub main: Expect,
    /// Also right: closing early where the server waits for a payload it
    /// could already refuse, or an echo where the code is only newer.
    pub also: Vec<Expect>,
    /// What RFC 6455 demands where the server is lenient, and the rule.
    pub strict: Option<(Expect, &'static str)>,
}

fn codes(list: &[u16]) -> End {
    End::Close(list.iter().copied().collect())
}

/// What the server must answer to the client's `bytes` after the upgrade,
/// read frame by frame as RFC 6455 and the README's close-code table say:
/// 1002 for reserved bits (RSV1 only on the first frame of a message when
/// permessage-deflate is on), unknown opcodes, fragmented control frames,
/// pings and closes over 125 bytes, stray continuations, a message inside a
/// fragmented one, bad close frames (1 byte, a forbidden code); 1007 for
/// text or a close reason that is not UTF-8; 1009 past `max_message`, per
/// frame, across fragments or inflated; pongs for pings; the close echoed
/// after the handler's `bye`; a drop where the bytes stop mid-frame.
pub fn predict(
    bytes: &[u8],
    compressed: bool,
    known: &[Deflated],
    max_message: usize,
) -> Prediction {
    let mut now = Expect {
        messages: Vec::new(),
        pongs: Vec::new(),
        end: End::Eof,
    };
    let mut also = Vec::new();
    let mut strict = None;
    // (text, compressed, data) of a message still in fragments.
    let mut partial: Option<(bool, bool, Vec<u8>)> = None;
    let mut at = 0;
    let max = max_message as u64;
    loop {
        let rest = &bytes[at..];
        if rest.len() < 2 {
            now.end = End::Eof;
            break;
        }
        // The first byte alone decides the reserved bits and the opcode.
        let (rsv, opcode) = ((rest[0] >> 4) & 7, rest[0] & 0x0f);
        let data_start = matches!(opcode, 1 | 2);
        let mut bad = BTreeSet::new();
        if rsv != 0 && !(compressed && rsv == 4 && data_start) {
            bad.insert(1002);
        }
        if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
            bad.insert(1002);
        }
        let Ok(h) = parse_header(rest) else {
            now.end = if bad.is_empty() {
                End::Eof
            } else {
                End::Close(bad)
            };
            break;
        };
        let control = opcode >= 8;
        if control && !h.fin {
            bad.insert(1002);
        }
        if opcode == 9 && h.len > 125 {
            bad.insert(1002);
        }
        if h.len > max {
            bad.insert(1009);
            if control {
                bad.insert(1002);
            }
        }
        if !bad.is_empty() {
            now.end = End::Close(bad);
            break;
        }
        let lenient = if h.mask.is_none() {
            Some("an unmasked client frame is taken (RFC 6455 §5.1: the server MUST close)")
        } else if h.non_minimal() {
            Some("a length not in its shortest form is taken (§5.2)")
        } else if opcode == 10 && h.len > 125 {
            Some("a pong over 125 bytes is taken (§5.5)")
        } else {
            None
        };
        if let (Some(why), None) = (lenient, &strict) {
            let expect = Expect {
                end: codes(&[1002]),
                ..now.clone()
            };
            strict = Some((expect, why));
        }
        if ((rest.len() - h.size) as u64) < h.len {
            // The server waits for the payload; one that judges the
            // header alone may close already.
            let early = match (opcode, &partial) {
                (0, None) | (1 | 2, Some(_)) => Some(1002),
                (0, Some((_, _, data))) if data.len() as u64 + h.len > max => Some(1009),
                (8, _) if h.len == 1 => Some(1002),
                _ => None,
            };
            if let Some(code) = early {
                also.push(Expect {
                    end: codes(&[code]),
                    ..now.clone()
                });
            }
            now.end = End::Eof;
            break;
        }
        let payload = unmask(&rest[h.size..h.size + h.len as usize], h.mask);
        at += h.size + h.len as usize;
        match opcode {
            8 => {
                now.end = match payload.len() {
                    0 => {
                        now.messages.push((true, b"bye".to_vec()));
                        End::Echo(payload)
                    }
                    1 => codes(&[1002]),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        let mut bad = BTreeSet::new();
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            bad.insert(1007);
                        }
                        if code == 1014 {
                            // Registered after RFC 6455: either is right.
                            let mut echoed = now.clone();
                            echoed.messages.push((true, b"bye".to_vec()));
                            echoed.end = End::Echo(payload.clone());
                            also.push(echoed);
                        }
                        if !sendable_close_code(code) {
                            bad.insert(1002);
                        }
                        if bad.is_empty() && payload.len() > 125 {
                            // A valid close, but too long for a control
                            // frame: refused with 1002 after the handler's
                            // `bye` (an echo would break §5.5 too).
                            now.messages.push((true, b"bye".to_vec()));
                            codes(&[1002])
                        } else if bad.is_empty() {
                            now.messages.push((true, b"bye".to_vec()));
                            End::Echo(payload)
                        } else {
                            End::Close(bad)
                        }
                    }
                };
                break;
            }
            9 => now.pongs.push(payload),
            10 => {}
            0 => {
                let Some((is_text, deflated, mut data)) = partial.take() else {
                    now.end = codes(&[1002]);
                    break;
                };
                if data.len() + payload.len() > max_message {
                    now.end = codes(&[1009]);
                    break;
                }
                data.extend_from_slice(&payload);
                if !h.fin {
                    partial = Some((is_text, deflated, data));
                    continue;
                }
                if let Some(end) = finish(&mut now, (is_text, deflated, data), known, max_message) {
                    now.end = end;
                    break;
                }
            }
            _ => {
                let (is_text, deflated) = (opcode == 1, rsv == 4);
                let mut bad = BTreeSet::new();
                // fastwebsockets checks a final text frame itself (the
                // compression shim hands it compressed text as binary).
                if is_text && h.fin && !deflated && std::str::from_utf8(&payload).is_err() {
                    bad.insert(1007);
                }
                if partial.is_some() {
                    bad.insert(1002);
                }
                if !bad.is_empty() {
                    now.end = End::Close(bad);
                    break;
                }
                if !h.fin {
                    partial = Some((is_text, deflated, payload));
                    continue;
                }
                if let Some(end) =
                    finish(&mut now, (is_text, deflated, payload), known, max_message)
                {
                    now.end = end;
                    break;
                }
            }
        }
    }
    Prediction {
        main: now,
        also,
        strict,
    }
}

/// A whole message: echoed, or the end it causes.
fn finish(
    now: &mut Expect,
    (is_text, deflated, data): (bool, bool, Vec<u8>),
    known: &[Deflated],
    max_message: usize,
) -> Option<End> {
    let data = if deflated {
        match known.iter().find(|(packed, _)| *packed == data) {
            Some((_, message)) => message.clone(),
            None => return Some(End::Loose),
        }
    } else {
        data
    };
    if data.len() > max_message {
        return Some(codes(&[1009]));
    }
    if is_text && std::str::from_utf8(&data).is_err() {
        return Some(codes(&[1007]));
    }
    if is_text && probe_command(&data) {
        return Some(End::Loose);
    }
    now.messages.push((is_text, data));
    None
}

/// Whether the probe handler reads `text` as a command rather than
/// echoing it.
fn probe_command(text: &[u8]) -> bool {
    let word = text.split(|b| *b == b' ').next().unwrap_or_default();
    matches!(
        word,
        b"join"
            | b"leave"
            | b"broadcast"
            | b"send"
            | b"publish"
            | b"publish-to"
            | b"later"
            | b"close"
            | b"whoami"
            | b"count"
            | b"trap"
            | b"loop"
            | b"bad-channel"
    )
}

/// The codes of every close frame in the client's bytes (the server
/// may echo any of them).
fn client_close_codes(bytes: &[u8]) -> Vec<u16> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Ok(h) = parse_header(&bytes[at..]) {
        if ((bytes.len() - at - h.size) as u64) < h.len {
            break;
        }
        let payload = unmask(&bytes[at + h.size..at + h.size + h.len as usize], h.mask);
        if h.opcode == 8 && payload.len() >= 2 {
            found.push(u16::from_be_bytes([payload[0], payload[1]]));
        }
        at += h.size + h.len as usize;
    }
    found
}

fn prefix<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    short.len() <= long.len() && short == &long[..short.len()]
}

fn accepts(expect: &Expect, heard: &Heard, reset: bool) -> bool {
    let exact = heard.messages == expect.messages && heard.pongs == expect.pongs;
    let partly = prefix(&heard.messages, &expect.messages) && prefix(&heard.pongs, &expect.pongs);
    match &expect.end {
        End::Echo(payload) => heard.close.as_ref() == Some(payload) && exact,
        End::Close(codes) => match heard.close_code() {
            Some(code) => codes.contains(&code) && exact,
            // A reset can swallow the close frame: a drop is allowed.
            None => reset && heard.close.is_none() && partly,
        },
        End::Eof => heard.close.is_none() && partly,
        End::Loose => {
            prefix(&expect.messages, &heard.messages) || prefix(&heard.messages, &expect.messages)
        }
    }
}

fn describe(expect: &Expect) -> String {
    let messages: Vec<String> = expect
        .messages
        .iter()
        .map(|(t, d)| format!("{}:{}", if *t { "text" } else { "binary" }, show(d)))
        .collect();
    let end = match &expect.end {
        End::Echo(p) => format!("the close echoed ({})", show(p)),
        End::Close(c) => format!("a close with a code in {c:?}"),
        End::Eof => "a drop without a close frame (a prefix of the echoes)".into(),
        End::Loose => "anything within the protocol".into(),
    };
    format!(
        "messages [{}], {} pong(s), then {end}",
        messages.join(", "),
        expect.pongs.len()
    )
}

/// Checks what the server said (`wire`) after the client sent `bytes`
/// (on a connection with permessage-deflate when `compressed`; `known`:
/// the compressed payloads the generator made, with their messages) to an
/// echo handler that greets with `open N` and says `bye` on close, under
/// `max_message`. `Ok` says in a word or two what happened.
pub fn judge_frames(
    (bytes, compressed, known): (&[u8], bool, &[Deflated]),
    max_message: usize,
    wire: &Wire,
    strict: bool,
) -> Result<String, String> {
    let prediction = predict(bytes, compressed, known, max_message);
    let theirs = client_close_codes(bytes);
    let allowed = |code: u16| SERVER_CLOSE_CODES.contains(&code) || theirs.contains(&code);
    let mut heard = hear(&wire.bytes, compressed, allowed, wire.reset)?;
    match heard.messages.first() {
        Some((true, greeting)) if greeting.starts_with(b"open ") => {
            heard.messages.remove(0);
        }
        other => {
            return Err(format!(
                "the handler's greeting did not come first: {other:?}"
            ));
        }
    }
    let mut candidates: Vec<&Expect> = Vec::new();
    if !(strict && prediction.strict.is_some()) {
        candidates.push(&prediction.main);
    }
    candidates.extend(&prediction.also);
    if let Some((expect, _)) = &prediction.strict {
        candidates.push(expect);
    }
    if let Some(matched) = candidates.iter().find(|e| accepts(e, &heard, wire.reset)) {
        let kind = if compressed { "/z " } else { "/p " };
        return Ok(kind.to_owned()
            + &match (&matched.end, heard.close_code()) {
                (End::Echo(_), _) => "close echoed".to_owned(),
                (End::Close(_), Some(code)) => format!("close {code}"),
                (End::Close(_), None) => "reset".to_owned(),
                (End::Eof, _) => "drop".to_owned(),
                (End::Loose, _) => "unpredicted".to_owned(),
            });
    }
    let heard_messages: Vec<String> = heard
        .messages
        .iter()
        .map(|(t, d)| format!("{}:{}", if *t { "text" } else { "binary" }, show(d)))
        .collect();
    let mut text = format!(
        "the server's answer breaks the contract\n  expected: {}",
        describe(&prediction.main)
    );
    for other in &prediction.also {
        text += &format!("\n  or: {}", describe(other));
    }
    if let Some((expect, why)) = &prediction.strict {
        text += &format!("\n  or (strict; {why}): {}", describe(expect));
    }
    text += &format!(
        "\n  heard: messages [{}], {} pong(s), close {:?}{}",
        heard_messages.join(", "),
        heard.pongs.len(),
        heard.close.as_deref().map(show),
        if wire.reset {
            ", then a reset"
        } else {
            ", then EOF"
        }
    );
    Err(text)
}

/// A short description of some bytes: length and an escaped head.
pub fn show(bytes: &[u8]) -> String {
    let head: String = bytes
        .iter()
        .take(24)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    let more = if bytes.len() > 24 { "…" } else { "" };
    format!("{}B \"{head}{more}\"", bytes.len())
}

// ---------------------------------------------------------------- sockets

/// What came back on a connection.
#[derive(Debug, Default)]
pub struct Wire {
    /// Everything the server sent, in order.
    pub bytes: Vec<u8>,
    /// The connection was reset rather than closed.
    pub reset: bool,
}

/// Upgrades a connection on `addr` to `path` (with `extra` header lines)
/// and reads the 101 head and the handler's first frame. Returns the stream,
/// the response head and the bytes read after the head.
pub async fn upgrade(
    addr: &str,
    path: &str,
    extra: &str,
) -> Result<(TcpStream, String, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write the upgrade: {e}"))?;
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i + 4;
        }
        read_some(&mut stream, &mut buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("the upgrade was refused: {head}"));
    }
    let rest = buffer.split_off(head_end);
    let mut rest = rest;
    // The handler's greeting, so the connection is fully open.
    while !parse_header(&rest).is_ok_and(|h| (rest.len() - h.size) as u64 >= h.len) {
        read_some(&mut stream, &mut rest).await?;
    }
    Ok((stream, head, rest))
}

async fn read_some(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
        Ok(Ok(0)) => Err(format!(
            "the server closed during the upgrade after {:?}",
            String::from_utf8_lossy(buffer)
        )),
        Ok(Ok(n)) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Ok(Err(e)) => Err(format!("read during the upgrade: {e}")),
        Err(_) => Err("hang: no upgrade response before the hang guard".into()),
    }
}

/// Write sizes adding up to `total`, from single bytes to 4 KiB, with up
/// to 3 pauses (a 0) between them: the server must cope with any split.
pub fn write_plan(rng: &mut Rng, total: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = total;
    let mut pauses = 0;
    while left > 0 {
        let most = *rng.pick(&[1, 3, 7, 64, 512, 4096]);
        let n = rng.range(1, left.min(most));
        out.push(n);
        left -= n;
        if pauses < 3 && rng.chance(0.02) {
            out.push(0);
            pauses += 1;
        }
    }
    out
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes `bytes` in `chunks` (sizes; 0 is a 2 ms pause) while reading
/// everything the server sends; half-closes once written (`fin`) and waits
/// for the server to close. Errors only on a hang.
pub async fn converse(
    stream: TcpStream,
    already: Vec<u8>,
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    fin: bool,
) -> Result<Wire, String> {
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in chunks.into_iter().chain(std::iter::once(usize::MAX)) {
            if size == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let end = at + size.min(bytes.len() - at);
            // The server may have closed already: what it sent is the point.
            if write.write_all(&bytes[at..end]).await.is_err() {
                return write;
            }
            at = end;
        }
        if fin {
            let _ = write.shutdown().await;
        }
        write
    });
    let mut wire = Wire {
        bytes: already,
        reset: false,
    };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(PATIENCE, read.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                break;
            }
            Err(_) => {
                writer.abort();
                return Err(format!(
                    "hang: the server neither closed nor sent anything for {PATIENCE:?} \
                     (after {} bytes from it{})",
                    wire.bytes.len(),
                    if fin { ", our side half-closed" } else { "" }
                ));
            }
        }
    }
    let _ = tokio::time::timeout(PATIENCE, writer).await;
    Ok(wire)
}

/// Sends a raw HTTP request on a fresh connection to `addr`, in `chunks`
/// (sizes; 0 is a 2 ms pause), and reads until the first response is
/// whole (`to_head`: it answers a HEAD request), or nothing came for
/// `quiet` once everything was written; then half-closes (unless `fin` is
/// false: the server must hang up by itself) and reads until the server
/// closes. Errors only on a hang.
pub async fn exchange(
    addr: &str,
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    (fin, to_head): (bool, bool),
    quiet: Duration,
) -> Result<Wire, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (written_tx, mut written) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in chunks.into_iter().chain(std::iter::once(usize::MAX)) {
            if size == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let end = at + size.min(bytes.len() - at);
            if write.write_all(&bytes[at..end]).await.is_err() {
                break;
            }
            at = end;
        }
        let _ = written_tx.send(());
        write
    });
    let mut wire = Wire::default();
    let mut chunk = vec![0u8; 16 * 1024];
    let started = Instant::now();
    let mut done_writing = false;
    let mut eof = false;
    // Until a whole response, or silence once the request is out.
    loop {
        if http_response(&wire.bytes, false, to_head).is_ok_and(|r| r.is_some()) {
            break;
        }
        if started.elapsed() > PATIENCE {
            writer.abort();
            return Err(format!(
                "hang: neither a response nor a close within {PATIENCE:?} (got {:?})",
                String::from_utf8_lossy(&wire.bytes)
            ));
        }
        if !done_writing && written.try_recv().is_ok() {
            done_writing = true;
        }
        match tokio::time::timeout(quiet, read.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                eof = true;
                break;
            }
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                eof = true;
                break;
            }
            Err(_) => {
                if done_writing || written.try_recv().is_ok() {
                    break;
                }
            }
        }
    }
    let mut write = match tokio::time::timeout(PATIENCE, writer).await {
        Ok(Ok(write)) => Some(write),
        Ok(Err(_)) => None,
        Err(_) if eof => None,
        Err(_) => {
            return Err(format!(
                "hang: the server stopped reading the request but kept the connection \
                 (got {:?})",
                String::from_utf8_lossy(&wire.bytes)
            ));
        }
    };
    if fin && let Some(write) = write.as_mut() {
        let _ = write.shutdown().await;
    }
    while !eof {
        match tokio::time::timeout(PATIENCE, read.read(&mut chunk)).await {
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                eof = true;
            }
            Err(_) => {
                return Err(format!(
                    "hang: the server kept the connection open for {PATIENCE:?}{} \
                     (got {} bytes: {:?})",
                    if fin {
                        " after our half-close"
                    } else {
                        " with an unfinished request (handshake_timeout_ms?)"
                    },
                    wire.bytes.len(),
                    String::from_utf8_lossy(&wire.bytes[..wire.bytes.len().min(300)])
                ));
            }
        }
    }
    drop(write);
    Ok(wire)
}

// ---------------------------------------------------------------- HTTP

/// An HTTP response read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The response at the start of `bytes` and how many bytes it took;
/// `Ok(None)` while incomplete (a body without a length runs to the end).
/// `to_head`: it answers a HEAD request, so it has no body.
pub fn http_response(
    bytes: &[u8],
    at_eof: bool,
    to_head: bool,
) -> Result<Option<(Response, usize)>, String> {
    let Some(end) = find(bytes, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end])
        .map_err(|_| format!("a response head that is not UTF-8: {:?}", &bytes[..end]))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let (true, Some(status)) = (version == "HTTP/1.1" || version == "HTTP/1.0", status) else {
        return Err(format!("not an HTTP response: {status_line:?}"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a response header without a colon: {line:?}"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = Response {
        version,
        status,
        headers,
        body: Vec::new(),
    };
    let start = end + 4;
    if to_head || status == 101 || status == 204 || status == 304 {
        return Ok(Some((response, start)));
    }
    let length = match response.header("content-length") {
        Some(value) => Some(
            value
                .parse::<usize>()
                .map_err(|_| format!("a bad content-length: {value:?}"))?,
        ),
        None if response.header("transfer-encoding").is_some() => {
            return Err("a chunked response (Sluice sends sized bodies)".into());
        }
        None => None,
    };
    let end = match length {
        Some(n) if bytes.len() - start >= n => start + n,
        Some(_) => return Ok(None),
        None if at_eof => bytes.len(),
        None => return Ok(None),
    };
    response.body = bytes[start..end].to_vec();
    Ok(Some((response, end)))
}

// ---------------------------------------------------------------- digests

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4), for `Sec-WebSocket-Accept` only.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------- DEFLATE

/// The empty stored block a sync flush ends with (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// `data` as a permessage-deflate payload: raw DEFLATE at `level`, either
/// sync-flushed with the tail stripped or finished (BFINAL set, §7.2.3.4).
pub fn deflate(data: &[u8], level: u32, finish: bool) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut compress = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() + 128);
    let flush = if finish {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let done = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[done..], &mut out, flush)
            .expect("deflate");
        let consumed = compress.total_in() as usize == data.len();
        if (finish && status == Status::StreamEnd)
            || (!finish && consumed && out.len() < out.capacity())
        {
            break;
        }
        out.reserve(out.capacity().max(256));
    }
    if !finish {
        assert!(
            out.ends_with(&TAIL),
            "a sync flush ends with the empty block"
        );
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// A permessage-deflate payload inflated (the tail appended), refusing
/// output over `limit`.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut input = data.to_vec();
    input.extend_from_slice(&TAIL);
    let mut inflater = Decompress::new(false);
    let mut out = Vec::with_capacity(256);
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(format!("inflates past {limit} bytes"));
            }
            out.reserve(out.len().max(4096));
        }
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(
                &input[inflater.total_in() as usize..],
                &mut out,
                FlushDecompress::Sync,
            )
            .map_err(|e| e.to_string())?;
        let consumed = inflater.total_in() as usize == input.len();
        if status == Status::StreamEnd || (consumed && out.len() < out.capacity()) {
            return Ok(out);
        }
        if (inflater.total_in(), inflater.total_out()) == before && out.len() < out.capacity() {
            return Err("the inflater made no progress".into());
        }
    }
}
