//! `native-bridge`: the ceiling bridge (see the library docs).

use std::io::Write as _;

use clap::Parser as _;
use sluice_native_bridge::{Args, start};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bridge = start(&args)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "native-bridge: ws://{}/{{channel}} <- topic {}",
        bridge.local_addr(),
        args.topic
    )?;
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    drop(stdout);
    bridge.wait_for_signal()
}
