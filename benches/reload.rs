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
//! * `cargo bench --bench reload -- --builds N` — only builds the snapshot N times from
//!   sources already in memory (no file I/O): what to run under `perf record`.
//! * Without `--bench` (`cargo test --benches`): one reload, as a quick check.
//!
//! Wall time depends on how many cores are free; the CPU time of a reload does not. After
//! the timed reloads the bench runs a few more with nothing else running and reports their
//! process CPU time (every thread's, as `getrusage` counts it): on a proxy pinned to one
//! core that also serves requests, that CPU is what a reload's wall time is made of.

mod common;

/// Counts live heap bytes (and their peak) during the first load, to tell how much memory
/// one snapshot really holds, apart from what the allocator keeps around after a load
/// (resident memory). Only then: two threads updating the same counters on every
/// allocation cost a build ~10 % more CPU, which the timed reloads must not include.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while counting (negative if more was freed).
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let size = layout.size() as isize;
            let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// User plus system CPU time of the whole process so far, in milliseconds.
fn cpu_ms() -> f64 {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

use arc_swap::ArcSwap;
use common::{account, median};
use ramgate::decision::{Authorizer, Caller};
use ramgate::model::Tags;
use ramgate::snapshot::Snapshot;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
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
    if let Some(i) = args.iter().position(|a| a == "--builds") {
        let n: usize = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--builds N");
        for _ in 0..n {
            let built = Snapshot::build(Path::new("generated"), account(), world.sources.clone());
            std::hint::black_box(built.expect("builds"));
        }
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
    COUNTING.store(true, Ordering::Relaxed);
    let first = Instant::now();
    let current = ArcSwap::from_pointee(Snapshot::load(dir, account()).expect("loads"));
    let cold = first.elapsed();
    COUNTING.store(false, Ordering::Relaxed);
    let held = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
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
            (who, r.action, r.group.clone())
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
                let (who, action, target) = next.next().expect("cycle");
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
                    &target.id,
                    Some(&target.meta),
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
    let mut reads = Vec::new();
    let mut swaps = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        // What a reload does (`src/ops/reload.rs`), in its two halves: read every file,
        // then build.
        let sources = ramgate::snapshot::read_sources(dir).expect("reads");
        reads.push(started.elapsed().as_secs_f64() * 1e3);
        let next = Snapshot::build(dir, account(), sources).expect("reloads");
        let loaded = started.elapsed();
        let previous = current.swap(Arc::new(next));
        let total = started.elapsed();
        // Freed after the swap, off the clock, as the proxy's reload thread (or, when a
        // request still holds it, the blocking pool) does: not a cost requests wait for.
        drop(previous);
        loads.push(loaded.as_secs_f64() * 1e3);
        swaps.push((total - loaded).as_secs_f64() * 1e6);
        totals.push(total.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let mut decisions = reader.join().expect("reader");

    // CPU time of the same reloads with no other thread running (see the module comment).
    let (mut cpu_reads, mut cpu_builds, mut cpu_frees) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = cpu_ms();
        let sources = ramgate::snapshot::read_sources(dir).expect("reads");
        let read = cpu_ms();
        let next = Snapshot::build(dir, account(), sources).expect("reloads");
        let built = cpu_ms();
        drop(current.swap(Arc::new(next)));
        // As the proxy does after each reload: so that the next one, like the proxy's,
        // starts with the load's scratch given back to the OS.
        ramgate::ops::memory::release_free_heap();
        let freed = cpu_ms();
        cpu_reads.push(read - started);
        cpu_builds.push(built - read);
        cpu_frees.push(freed - built);
    }
    let n = decisions.len();
    let max_total = totals.iter().copied().fold(0.0, f64::max);
    let max_decision = decisions.iter().copied().fold(0.0, f64::max);
    decisions.sort_by(f64::total_cmp);
    let p = |q: f64| decisions[((n as f64 - 1.0) * q) as usize];
    println!(
        "reload of {} policies, {} users:",
        common::POLICIES,
        common::USERS
    );
    println!(
        "  first load (cold file cache): {:.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  heap held by one snapshot: {:.1} MiB (peak while loading: {:.1} MiB)",
        mib(held),
        mib(peak)
    );
    println!(
        "  {rounds} reloads, median: read {:.1} ms, read+parse+validate {:.1} ms, swap {:.1} µs, total {:.1} ms (max {:.1} ms)",
        median(&mut reads),
        median(&mut loads),
        median(&mut swaps),
        median(&mut totals),
        max_total
    );
    println!(
        "  CPU time of a reload (median of {rounds}, nothing else running): read {:.1} ms, build {:.1} ms, total {:.1} ms; freeing the replaced snapshot and trimming the heap {:.1} ms",
        median(&mut cpu_reads),
        median(&mut cpu_builds),
        median(&mut cpu_reads) + median(&mut cpu_builds),
        median(&mut cpu_frees)
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
