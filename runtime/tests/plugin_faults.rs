//! Fault isolation: guests that loop forever, eat memory, trap or return
//! garbage each fail with their own typed error, within the deadline, and
//! the next call on the same instance works, while another plugin in the
//! same process keeps answering correctly throughout.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice_runtime::plugin::{FaultKind, Limits, LoadedPlugin, PluginSpec, Role};
use sluice_runtime::record::Record;

/// A router named in errors as pipeline `faults-test` (the tests check it).
fn load(name: &str, config: &str, limits: Limits) -> LoadedPlugin {
    let mut spec = support::plugins::spec(name, Role::Router, config);
    spec.id.pipeline = "faults-test".into();
    spec.limits = limits;
    support::plugins::host().load(spec).expect("load plugin")
}

fn batch(key: &str) -> Arc<[Record]> {
    vec![Record::new("t", Some(key.as_bytes()), b"{}")].into()
}

const LIMITS: Limits = Limits {
    memory_bytes: 16 << 20,
    deadline_ms: 20,
};

/// Runs `fault` on the faults plugin while a key-router on another thread
/// keeps routing; returns the error and how many correct answers the
/// bystander gave while the fault was in progress.
fn with_bystander(key: &str, limits: Limits) -> (FaultKind, Duration, u64) {
    let faults = load("faults", "{}", limits);
    let router = load("key-router", "{}", Limits::default());
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicU64::new(0));
    let bystander = {
        let (stop, answers) = (stop.clone(), answers.clone());
        std::thread::spawn(move || {
            let mut instance = router.instantiate().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let routes = instance
                    .route_batch(batch("channel1"))
                    .expect("bystander call");
                assert_eq!(routes.len(), 1);
                assert!(routes[0].key_channel && routes[0].channels.is_empty());
                answers.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the bystander get going, then fault.
    while answers.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let mut instance = faults.instantiate().unwrap();
    let before = answers.load(Ordering::Relaxed);
    let started = Instant::now();
    let error = instance
        .route_batch(batch(key))
        .expect_err("the fault must fail the call");
    let took = started.elapsed();
    let during = answers.load(Ordering::Relaxed) - before;
    assert_eq!(error.id.plugin, "faults");
    assert_eq!(error.id.pipeline, "faults-test");
    assert!(
        error
            .to_string()
            .contains("plugin `faults` (pipeline `faults-test`, tenant `t1`)"),
        "{error}"
    );

    // The same instance answers the next call correctly.
    let routes = instance
        .route_batch(batch("channel1"))
        .expect("call after the fault");
    assert!(routes[0].key_channel);

    stop.store(true, Ordering::Relaxed);
    bystander.join().expect("bystander never failed");
    (error.kind, took, during)
}

#[test]
fn a_guest_that_loops_forever_is_stopped_at_its_deadline() {
    let (kind, took, during) = with_bystander("loop", LIMITS);
    assert_eq!(kind, FaultKind::Timeout(Duration::from_millis(20)));
    // Interrupted at the deadline, not left running (generous bound: the
    // point is "stopped", not "fast").
    assert!(took >= Duration::from_millis(20), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        during > 0,
        "the bystander made no progress while the guest spun"
    );
}

#[test]
fn a_guest_that_allocates_past_its_cap_is_stopped() {
    let (kind, took, _) = with_bystander(
        "alloc",
        // A deadline the allocation loop cannot reach first, even on a busy
        // machine, so the cap is what stops it.
        Limits {
            deadline_ms: 5_000,
            ..LIMITS
        },
    );
    assert_eq!(kind, FaultKind::MemoryExceeded(16 << 20));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_guest_that_traps_reports_its_panic_message() {
    let (kind, _, _) = with_bystander("trap", LIMITS);
    let FaultKind::Trap(reason) = kind else {
        panic!("expected a trap, got {kind:?}")
    };
    assert!(
        reason.contains("the faults plugin was asked to trap"),
        "{reason}"
    );
}

#[test]
fn a_guest_that_returns_garbage_is_caught() {
    let (kind, _, _) = with_bystander("garbage", LIMITS);
    assert_eq!(
        kind,
        FaultKind::InvalidReturn("2 routes for a batch of 1 records".into())
    );
    let (kind, _, _) = with_bystander("bad-channel", LIMITS);
    assert_eq!(
        kind,
        FaultKind::InvalidReturn("channel name is empty".into())
    );
}

#[test]
fn init_errors_and_wrong_roles_are_reported_at_load() {
    let host = support::plugins::host();
    let spec = |role, config: &str| support::plugins::spec("faults", role, config);
    let err = host
        .load(spec(Role::Router, r#"{"fail_init":"no such topic"}"#))
        .err()
        .unwrap();
    assert_eq!(err.kind, FaultKind::Init("no such topic".into()));

    let err = host.load(spec(Role::Authenticator, "{}")).err().unwrap();
    assert!(
        matches!(
            err.kind,
            FaultKind::WrongWorld {
                expected: "sluice:plugin/auth@0.1.0",
                ..
            }
        ),
        "{err}"
    );

    let not_a_component = PluginSpec {
        bytes: b"\0asm\x01\0\0\0".to_vec().into(),
        ..spec(Role::Router, "{}")
    };
    let err = host.load(not_a_component).err().unwrap();
    assert!(
        matches!(&err.kind, FaultKind::Compile(r) if r.contains("not a WebAssembly component")),
        "{err}"
    );
}
