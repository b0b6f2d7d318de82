//! `faults`: a router that misbehaves on demand, for the host's
//! fault-isolation tests. The key of the first record in a batch picks what
//! happens; any other key is routed normally (to the key channel), so a test
//! can check that the next call after a fault works.
//!
//! | key | fault |
//! |---|---|
//! | `loop` | spins forever (the host's deadline must stop it) |
//! | `alloc` | allocates until memory runs out (the host's cap must stop it) |
//! | `trap` | panics, which is a trap |
//! | `garbage` | returns two routes for one record |
//! | `bad-channel` | returns a channel name that is empty |
//! | `print` | writes to stdout and stderr, then routes normally |
//! | `sandbox` | tries the environment, the filesystem and the network; routes to one channel per attempt saying what it got |
//!
//! Config: `fail_init = "reason"` makes `init` fail with that reason.

use sluice_sdk::{Config, Record, RecordBatch, Route, Router};

struct Faults;

impl Router for Faults {
    fn new(config: &Config) -> Result<Self, String> {
        match config.value().get("fail_init").and_then(|v| v.as_str()) {
            Some(reason) => Err(reason.to_owned()),
            None => Ok(Faults),
        }
    }

    fn route_record(&mut self, _record: Record<'_>) -> Route {
        Route::to_key()
    }

    fn route(&mut self, batch: &RecordBatch) -> Vec<Route> {
        let key = batch.key(0).unwrap_or_default();
        match key.as_slice() {
            b"loop" => spin(),
            b"alloc" => hoard(),
            b"trap" => panic!("the faults plugin was asked to trap"),
            b"garbage" => vec![Route::to_key(), Route::to_key()],
            b"bad-channel" => vec![Route::to([""])],
            b"print" => {
                println!("hello from the faults plugin on stdout");
                eprintln!("hello from the faults plugin on stderr");
                vec![Route::to_key(); batch.len() as usize]
            }
            b"sandbox" => vec![Route::to(probe_sandbox())],
            _ => vec![Route::to_key(); batch.len() as usize],
        }
    }
}

/// What a plugin can reach: every answer should be "none"/"denied".
fn probe_sandbox() -> Vec<String> {
    let env = format!("env-vars:{}", std::env::vars().count());
    let fs = match std::fs::read_dir("/") {
        Ok(_) => "fs:read",
        Err(_) => "fs:denied",
    };
    let net = match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => "net:connected",
        Err(_) => "net:denied",
    };
    vec![env, fs.to_owned(), net.to_owned()]
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every chunk so the allocation cannot be optimised away.
        let chunk = vec![1u8; 1 << 20];
        chunks.push(std::hint::black_box(chunk));
    }
}

sluice_sdk::export_router!(Faults);
