//! Runs cases: over the network in concurrent batches with a liveness
//! check after each ([`drive`], [`alive`]), or in-process in a worker
//! thread ([`run_cases`]); each under a hang guard, a panic turned into a
//! failure of its case.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;

use super::{CASE_PATIENCE, Failure, Rng, Settings, fail};
use crate::support::{http_get, ws};

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
            let mut client = ws::Client::connect(&format!("ws://{addr}/p/alive")).await;
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
            let (status, body) = http_get(&addr, "/healthz").await;
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
