//! `cargo xtask bench graph`: listing throughput and peak memory against the emulator.

fn main() {}
