//! Stopping while the broker is gone: SIGTERM still ends `sluice run`
//! (clients get 1001), even though the consumer cannot commit its offsets.
//! Records it handled but could not commit are read again after a restart
//! (at least once), never lost.

mod support;

use std::time::{Duration, Instant};

use sluice_tests::Broker;
use sluice_tests::kafka::{Outgoing, Producer};
use support::Sluice;
use support::ws::Client;

/// A hang guard, not a measurement: far above the bounded wait for the
/// consumer's last commit.
const EXIT_GUARD: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_when_the_broker_is_gone() {
    let mut broker = Broker::start().unwrap();
    broker.create_topic("feed", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = support::pipeline(&broker.bootstrap(), "feed", "{}", "", "");
    let mut sluice = Sluice::start(dir.path(), "shutdown", &file, &[]);
    let mut client = Client::connect(&format!("{}/c", sluice.base)).await;
    let producer = Producer::new(&broker.bootstrap()).unwrap();
    producer
        .send("feed", &Outgoing::new("one").key("c"))
        .unwrap();
    assert_eq!(client.next_data().await, "one".into());

    broker.stop();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &sluice.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(client.expect_close().await.0, 1001);
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = sluice.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < EXIT_GUARD,
            "sluice did not exit after SIGTERM with the broker gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit}");
}
