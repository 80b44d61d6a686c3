//! How long a reload of the 10,000-policy directory takes, and whether requests stall
//! while it runs: the reload path of `src/ops/reload.rs` (`Snapshot::load` — read, parse,
//! validate, compile — then one `ArcSwap::store`), on the generated directory of
//! `benches/common` written to a temporary directory.
//!
//! While reloads run on one thread, a second thread decides requests the way the proxy
//! does (load the current snapshot, decide one single-resource request) and records the
//! longest time any one of them took: a reload must never make a decision wait.
//!
//! * `cargo bench --bench reload` — the measurement (prints medians and maxima).
//! * `cargo bench --bench reload -- --write-dir DIR` — only writes the generated directory
//!   to DIR (for `benches/memory.sh`, which runs the real proxy on it) and exits.
//! * Without `--bench` (`cargo test --benches`): one reload, as a quick check.

mod common;

use arc_swap::ArcSwap;
use common::{account, median};
use ramgate::decision::{Authorizer, Caller};
use ramgate::model::Tags;
use ramgate::snapshot::Snapshot;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let world = common::generated_world();
    if let Some(i) = args.iter().position(|a| a == "--write-dir") {
        let dir = PathBuf::from(args.get(i + 1).expect("--write-dir DIR"));
        common::write_dir(&dir, &world.sources).expect("write the directory");
        println!(
            "wrote {} files ({} users, {} policies) to {}",
            world.sources.len(),
            common::USERS,
            common::POLICIES,
            dir.display()
        );
        return;
    }
    let benchmarking = args.iter().any(|a| a == "--bench");
    let dir = std::env::temp_dir().join(format!("ramgate-reload-{}", std::process::id()));
    common::write_dir(&dir, &world.sources).expect("write the directory");
    let result = std::panic::catch_unwind(|| run(&dir, &world, benchmarking));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn run(dir: &std::path::Path, world: &common::World, benchmarking: bool) {
    let first = Instant::now();
    let current = ArcSwap::from_pointee(Snapshot::load(dir, account()).expect("loads"));
    let cold = first.elapsed();
    if !benchmarking {
        println!("one reload of the 10k directory: {cold:?}");
        return;
    }

    // Requests for the reader thread, resolved once (principal ids are stable across
    // reloads of the same directory).
    let snapshot = current.load_full();
    let requests: Vec<_> = world
        .requests
        .iter()
        .map(|r| {
            let who = snapshot.directory.user(&r.user).expect("a generated user");
            (who, r.action, r.meta.clone())
        })
        .collect();
    drop(snapshot);

    let stop = Arc::new(AtomicBool::new(false));
    let current = Arc::new(current);
    let reader = {
        let (stop, current) = (stop.clone(), current.clone());
        std::thread::spawn(move || {
            let no_tags = Tags::new();
            let mut times = Vec::with_capacity(1 << 20);
            let mut next = requests.iter().cycle();
            while !stop.load(Ordering::Relaxed) {
                let (who, action, meta) = next.next().expect("cycle");
                let started = Instant::now();
                let snapshot = current.load();
                let caller = Caller {
                    principal: *who,
                    source_ip: None,
                    secure_transport: true,
                    now_unix_nanos: 0,
                };
                let d = Authorizer::new(&snapshot, caller).decide_resource(
                    action,
                    &meta.id,
                    Some(meta),
                    &no_tags,
                    None,
                );
                std::hint::black_box(d);
                drop(snapshot);
                times.push(started.elapsed().as_nanos() as f64);
            }
            times
        })
    };

    // Baseline: decisions with no reload running.
    std::thread::sleep(Duration::from_millis(500));
    let rounds = 10;
    let mut loads = Vec::new();
    let mut swaps = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let next = Snapshot::load(dir, account()).expect("reloads");
        let loaded = started.elapsed();
        current.store(Arc::new(next));
        let total = started.elapsed();
        loads.push(loaded.as_secs_f64() * 1e3);
        swaps.push((total - loaded).as_secs_f64() * 1e6);
        totals.push(total.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let mut decisions = reader.join().expect("reader");
    let n = decisions.len();
    let max_total = totals.iter().copied().fold(0.0, f64::max);
    let max_decision = decisions.iter().copied().fold(0.0, f64::max);
    decisions.sort_by(f64::total_cmp);
    let p = |q: f64| decisions[((n as f64 - 1.0) * q) as usize];
    println!("reload of {} policies, {} users:", common::POLICIES, common::USERS);
    println!("  first load (cold file cache): {:.1} ms", cold.as_secs_f64() * 1e3);
    println!(
        "  {rounds} reloads, median: read+parse+validate {:.1} ms, swap {:.1} µs, total {:.1} ms (max {:.1} ms)",
        median(&mut loads),
        median(&mut swaps),
        median(&mut totals),
        max_total
    );
    println!(
        "  {n} decisions meanwhile on another thread: p50 {:.0} ns, p99 {:.0} ns, p99.99 {:.0} ns, max {:.1} µs",
        p(0.5),
        p(0.99),
        p(0.9999),
        max_decision / 1e3
    );
    println!(
        "budget reload: under 200 ms: {} ({:.1} ms, max {:.1} ms)",
        if max_total < 200.0 { "met" } else { "NOT met" },
        median(&mut totals),
        max_total
    );
}
