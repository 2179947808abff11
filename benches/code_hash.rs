//! The cost of hashing and of verifying one code with `CodeHasher`, per scheme and per argon2
//! parameter set. This is how `codes.argon2` was chosen "to cost about 1 ms on one core"
//! (DESIGN.md, "Requests, codes and money"; config/default.toml).
//!
//! Each iteration is one `hash` or one `verify` call, awaited on a multi-thread tokio runtime:
//! argon2 runs on the blocking pool (as in the service), so the time includes the hand-off to
//! and from a blocking thread; HMAC runs inline. One call at a time, so one core does the work.
//!
//! Run: `cargo bench --bench code_hash` (add a filter such as `-- argon2id` to narrow it).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::hint::black_box;
use std::time::Duration;
use verigram::domain::{Code, RequestId, TenantId};
use verigram::secrets::{Argon2Params, CodeBinding, CodeHasher, HashScheme, Pepper};

/// The schemes measured, with their benchmark names. The default is `m=4096,t=1,p=1`; the last
/// argon2 set is OWASP's password setting, for contrast.
fn schemes() -> Vec<(String, HashScheme)> {
    let mut out = vec![("hmac-sha256".to_owned(), HashScheme::HmacSha256)];
    for (memory_kib, iterations) in [(512, 1), (1024, 1), (2048, 1), (3072, 1), (4096, 1), (19456, 2)] {
        let params = Argon2Params { memory_kib, iterations, parallelism: 1 };
        let mut name = format!("argon2id m={memory_kib},t={iterations},p=1");
        if (memory_kib, iterations) == (4096, 1) {
            name.push_str(" (default)");
        }
        if memory_kib == 19456 {
            name.push_str(" (OWASP password)");
        }
        out.push((name, HashScheme::Argon2id(params)));
    }
    out
}

fn bench_code_hash(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
        eprintln!("code_hash: cannot build a tokio runtime");
        return;
    };
    let Some(pepper) = Pepper::new(&[0x5a; 32]) else {
        eprintln!("code_hash: a 32-byte pepper was refused");
        return;
    };
    let binding = CodeBinding { tenant: TenantId::generate(), request: RequestId::generate() };
    let Ok(code) = Code::parse("123456") else {
        eprintln!("code_hash: \"123456\" is not a code");
        return;
    };

    for (op, is_verify) in [("hash", false), ("verify", true)] {
        let mut group = c.benchmark_group(format!("code_hash/{op}"));
        group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        for (name, scheme) in schemes() {
            let slow = matches!(scheme, HashScheme::Argon2id(p) if p.memory_kib > 4096);
            if slow {
                // ~tens of ms an iteration: linear sampling would need thousands of iterations.
                group.sampling_mode(SamplingMode::Flat).sample_size(20);
            } else {
                group.sampling_mode(SamplingMode::Auto).sample_size(50);
            }
            // One permit: calls are sequential anyway, as a single request would see them.
            let hasher = CodeHasher::new(scheme, pepper.clone(), 1);
            if is_verify {
                let phc = match runtime.block_on(hasher.hash(&binding, &code)) {
                    Ok(phc) => phc,
                    Err(e) => {
                        eprintln!("code_hash: {name}: hash failed: {e}");
                        continue;
                    }
                };
                // A correct code must verify, or the figure measures an error path.
                if !matches!(runtime.block_on(hasher.verify(&binding, &code, &phc)), Ok(true)) {
                    eprintln!("code_hash: {name}: the code does not verify against its own hash");
                    continue;
                }
                group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                    b.to_async(&runtime)
                        .iter(|| async { black_box(hasher.verify(&binding, black_box(&code), &phc).await.ok()) });
                });
            } else {
                group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                    b.to_async(&runtime)
                        .iter(|| async { black_box(hasher.hash(&binding, black_box(&code)).await.ok()) });
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_code_hash);
criterion_main!(benches);
