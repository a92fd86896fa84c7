//! `cargo xtask bench vault`: encrypt and decrypt operations per second on one core for
//! 64-byte and 1 KiB secrets, and the time of one PBKDF2 key derivation.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tenantlink_vault::{DEFAULT_PBKDF2_ITERATIONS, FernetKey, KeyRing, SecretString};

/// Runs `op` repeatedly for about `budget` and returns operations per second.
fn ops_per_sec(budget: Duration, mut op: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        op();
    }
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < budget {
        for _ in 0..1_000 {
            op();
        }
        done += 1_000;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn main() {
    let budget = Duration::from_secs(2);
    let ring = KeyRing::new(FernetKey::generate().expect("random key"));
    println!("tenantlink-vault benchmark (one thread)");
    println!(
        "{:<10} {:>16} {:>16}",
        "secret", "encrypt ops/s", "decrypt ops/s"
    );
    for (label, size) in [("64 B", 64usize), ("1 KiB", 1024)] {
        let secret = vec![0x5au8; size];
        let token = ring.encrypt(&secret).expect("encrypt");
        let encrypt = ops_per_sec(budget, || {
            black_box(ring.encrypt(black_box(&secret)).expect("encrypt"));
        });
        let decrypt = ops_per_sec(budget, || {
            black_box(ring.decrypt(black_box(&token)).expect("decrypt"));
        });
        println!("{label:<10} {encrypt:>16.0} {decrypt:>16.0}");
    }
    let passphrase = SecretString::from("benchmark passphrase");
    let runs = 5;
    let started = Instant::now();
    for _ in 0..runs {
        black_box(
            FernetKey::derive(&passphrase, b"benchmark salt", DEFAULT_PBKDF2_ITERATIONS)
                .expect("derive"),
        );
    }
    println!(
        "key derivation (PBKDF2-HMAC-SHA256, {DEFAULT_PBKDF2_ITERATIONS} iterations): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
    );
}
