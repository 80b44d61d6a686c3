//! The decision log: one JSON line per decided request (time, request id, principal,
//! action, resource ids, resource group, decision, the statement or rule that decided,
//! latency, and whether the client went away before the answer), to stdout, a file, or
//! nowhere. Allows may be sampled; denials (and would-be denials, silent empties, errors)
//! never are. An entry carries no credential: no header, no signature, no access key id,
//! only the principal's ARN.
//!
//! Lines are encoded by the request's own task into one shared buffer, which a writer
//! thread takes whole and writes out every [`FLUSH_EVERY`] (sooner once it passes
//! [`WAKE_AT`]): a request costs the encoding and one uncontended lock, never a system call
//! or a thread wake-up of its own. Memory is bounded ([`BUFFER_BYTES`]) whatever the sink
//! does, and a slow sink blocks the writer thread, never a runtime worker. When the buffer
//! is full (the sink is slower than the traffic):
//!
//! * an allow is dropped and counted in `ramgate_decision_log_dropped_total` — allows are
//!   already subject to sampling, and the request was forwarded either way;
//! * anything else waits for room before its answer is sent: a denial is never lost,
//!   and the callers being refused are the ones slowed, by exactly as much as the sink is.
//!
//! A request cancelled before its answer (its record written from `Drop`) cannot wait
//! asynchronously: its non-allow line blocks that thread until there is room, which
//! happens only when the buffer is full as well, and is bounded by how fast the sink drains.
//!
//! Lines reach the sink at most [`FLUSH_EVERY`] after their request was answered, and every
//! line is written before the process exits ([`DecisionLog::flush`] at shutdown).

use super::metrics::{self, DroppedBecause};
use crate::config::{DecisionSink, Log};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, Notify};

/// Encoded lines held at most (about 4,000 lines of 250 bytes; 140 ms of lines at 30,000
/// requests/s).
pub(crate) const BUFFER_BYTES: usize = 1 << 20;

/// The writer is woken early once this much is buffered.
const WAKE_AT: usize = BUFFER_BYTES / 8;

/// The longest a line waits in the buffer.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// One line of the log. Written by [`encode`]; serde's `Serialize`, derived in tests only,
/// is the reference it is held to.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct Entry {
    #[cfg_attr(test, serde(serialize_with = "rfc3339"))]
    pub time: SystemTime,
    pub request_id: String,
    pub principal: String,
    pub action: &'static str,
    pub resource_ids: Vec<String>,
    pub resource_group: Option<String>,
    pub decision: &'static str,
    pub reason: String,
    pub latency_us: u64,
    /// The request ended before its answer was sent (client disconnect, HTTP/2 stream
    /// reset, the drain's grace abort). A forwarded write may have been applied.
    #[cfg_attr(test, serde(skip_serializing_if = "std::ops::Not::not"))]
    pub cancelled: bool,
}

#[cfg(test)]
fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let t = time::OffsetDateTime::from(*t);
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    s.serialize_str(&text)
}

pub(crate) struct DecisionLog {
    shared: Option<Arc<Shared>>,
    allow_sample_rate: f64,
}

/// What the requests and the writer thread share.
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer early: the buffer passed [`WAKE_AT`], a flush is asked for, or the
    /// log is closing.
    wake: Condvar,
    /// Notified by the writer each time it takes the buffer: room for async waiters...
    room: Notify,
    /// ...and for blocked threads.
    room_blocking: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Waiting for everything buffered before they asked to reach the sink.
    flushes: Vec<oneshot::Sender<()>>,
    closing: bool,
}

impl Pending {
    /// Whether a line of `len` bytes fits (an empty buffer takes any one line).
    fn has_room(&self, len: usize) -> bool {
        self.lines.is_empty() || self.lines.len() + len <= BUFFER_BYTES
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every update of `Pending` is a single push or swap: a panic elsewhere while the
        // lock was held cannot leave it half-updated.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `line` if there is room.
    fn append(&self, line: &[u8]) -> bool {
        let mut pending = self.lock();
        let room = pending.has_room(line.len());
        if room {
            self.push(&mut pending, line);
        }
        room
    }

    /// Appends `line`, waking the writer when the buffer was empty (it starts its
    /// [`FLUSH_EVERY`] wait) or just passed [`WAKE_AT`].
    fn push(&self, pending: &mut Pending, line: &[u8]) {
        let before = pending.lines.len();
        pending.lines.extend_from_slice(line);
        if before == 0 || (before < WAKE_AT && pending.lines.len() >= WAKE_AT) {
            self.wake.notify_one();
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.lock().closing = true;
            shared.wake.notify_one();
        }
    }
}

thread_local! {
    /// Where a line is encoded before it is appended (one per worker thread, reused).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `entry` as one JSON line and hands it to `append`.
fn with_line<R>(entry: &Entry, append: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            encode(&mut line, entry);
            append(&line)
        }
        // Only reachable if `append` re-entered this function.
        Err(_) => {
            let mut line = Vec::new();
            encode(&mut line, entry);
            append(&line)
        }
    })
}

/// `entry` as one line of JSON: exactly what serde's `Serialize` of [`Entry`] writes (the
/// tests hold them equal), without its per-byte escaping of strings that need none.
fn encode(line: &mut Vec<u8>, entry: &Entry) {
    line.extend_from_slice(b"{\"time\":\"");
    // RFC 3339 text never needs escaping. A time `time` cannot format (a year past 9999)
    // writes nothing: an empty string.
    let _ = time::OffsetDateTime::from(entry.time)
        .format_into(line, &time::format_description::well_known::Rfc3339);
    line.extend_from_slice(b"\",\"request_id\":");
    json_str(line, &entry.request_id);
    line.extend_from_slice(b",\"principal\":");
    json_str(line, &entry.principal);
    line.extend_from_slice(b",\"action\":");
    json_str(line, entry.action);
    line.extend_from_slice(b",\"resource_ids\":[");
    for (i, id) in entry.resource_ids.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        json_str(line, id);
    }
    line.extend_from_slice(b"],\"resource_group\":");
    match &entry.resource_group {
        Some(group) => json_str(line, group),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"decision\":");
    json_str(line, entry.decision);
    line.extend_from_slice(b",\"reason\":");
    json_str(line, &entry.reason);
    let _ = write!(line, ",\"latency_us\":{}", entry.latency_us);
    if entry.cancelled {
        line.extend_from_slice(b",\"cancelled\":true");
    }
    line.extend_from_slice(b"}\n");
}

/// A JSON string: copied between quotes when nothing in it needs escaping (the check is one
/// branch-free pass), else escaped by serde_json.
fn json_str(line: &mut Vec<u8>, text: &str) {
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    if plain {
        line.push(b'"');
        line.extend_from_slice(text.as_bytes());
        line.push(b'"');
    } else {
        // Writing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut *line, text);
    }
}

impl DecisionLog {
    /// Opens the sink and starts its writer thread.
    pub(crate) fn open(settings: &Log) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match &settings.decisions {
            DecisionSink::Off => {
                return Ok(Self {
                    shared: None,
                    allow_sample_rate: 0.0,
                })
            }
            DecisionSink::Stdout => Box::new(std::io::stdout()),
            DecisionSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the decision log {}: {e}", path.display()))?,
            ),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            room: Notify::new(),
            room_blocking: Condvar::new(),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_lines(&writer, sink))
            .map_err(|e| format!("cannot start the decision log writer: {e}"))?;
        Ok(Self {
            shared: Some(shared),
            allow_sample_rate: settings.allow_sample_rate,
        })
    }

    /// Whether decision lines are written at all.
    pub(crate) fn is_on(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether a line is to be written for this request (allows are sampled). Drawn once
    /// per request.
    pub(crate) fn keeps(&self, is_allow: bool) -> bool {
        self.shared.is_some()
            && !(is_allow && self.allow_sample_rate < 1.0 && rand_unit() >= self.allow_sample_rate)
    }

    /// Buffers the line in `slot` (taking it), waiting for room unless it is an allow, which
    /// is dropped and counted when the buffer is full. Cancel-safe: while it waits, the line
    /// stays in `slot`, for the caller to write some other way.
    pub(crate) async fn write_waiting(&self, slot: &mut Option<Box<Entry>>, is_allow: bool) {
        let Some(shared) = &self.shared else {
            *slot = None;
            return;
        };
        loop {
            // Registered before trying, so room made in between is not missed.
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let Some(entry) = slot.as_deref() else { return };
            if with_line(entry, |line| shared.append(line)) {
                *slot = None;
                return;
            }
            if is_allow {
                *slot = None;
                metrics::decision_log_dropped(DroppedBecause::QueueFull, 1);
                return;
            }
            room.await;
        }
    }

    /// [`Self::write_waiting`] from synchronous code (a request record dropped mid-flight):
    /// a line that is not an allow blocks this thread until there is room.
    pub(crate) fn write_blocking(&self, entry: Box<Entry>, is_allow: bool) {
        let Some(shared) = &self.shared else { return };
        with_line(&entry, |line| {
            let mut pending = shared.lock();
            loop {
                if pending.has_room(line.len()) {
                    shared.push(&mut pending, line);
                    return;
                }
                if is_allow {
                    metrics::decision_log_dropped(DroppedBecause::QueueFull, 1);
                    return;
                }
                shared.wake.notify_one();
                pending = shared
                    .room_blocking
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        });
    }

    /// Waits until every line buffered so far is written to the sink.
    pub(crate) async fn flush(&self) {
        if let Some(shared) = &self.shared {
            let (tx, rx) = oneshot::channel();
            shared.lock().flushes.push(tx);
            shared.wake.notify_one();
            let _ = rx.await;
        }
    }
}

/// A uniform number in [0, 1) without a random-number crate: the low bits of a v4 uuid.
fn rand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The writer thread: asleep while nothing is buffered; once a line is, it waits
/// [`FLUSH_EVERY`] (less when the buffer passes [`WAKE_AT`], a flush is asked for or the
/// log closes), takes the whole buffer (leaving it an empty one of the same capacity) and
/// writes it to the sink in one go. A sink that fails loses the batch: its lines are
/// counted, and the first failure of a run is logged.
fn write_lines(shared: &Shared, mut sink: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    let mut failing = false;
    let urgent = |p: &Pending| p.lines.len() >= WAKE_AT || !p.flushes.is_empty() || p.closing;
    let wait = |p, timeout| {
        shared
            .wake
            .wait_timeout(p, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    };
    loop {
        let (flushes, closing) = {
            let mut pending = shared.lock();
            while pending.lines.is_empty() && !urgent(&pending) {
                pending = wait(pending, Duration::from_secs(3600));
            }
            let deadline = Instant::now() + FLUSH_EVERY;
            while !urgent(&pending) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                pending = wait(pending, deadline - now);
            }
            // Flushes asked for before the swap are answered after it is written: their
            // lines are in this batch.
            let flushes = std::mem::take(&mut pending.flushes);
            std::mem::swap(&mut pending.lines, &mut batch);
            (flushes, pending.closing)
        };
        shared.room.notify_waiters();
        shared.room_blocking.notify_all();
        if !batch.is_empty() {
            match sink.write_all(&batch).and_then(|()| sink.flush()) {
                Ok(()) => failing = false,
                Err(e) => {
                    let lines = batch.iter().filter(|&&b| b == b'\n').count();
                    metrics::decision_log_dropped(DroppedBecause::WriteFailed, lines as u64);
                    if !failing {
                        tracing::error!("the decision log cannot be written: {e}");
                    }
                    failing = true;
                }
            }
            batch.clear();
        }
        for done in flushes {
            let _ = done.send(());
        }
        if closing && shared.lock().lines.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(decision: &'static str) -> Entry {
        Entry {
            time: SystemTime::UNIX_EPOCH,
            request_id: "r-1".into(),
            principal: "acs:ram::1234567890123456:user/liumi".into(),
            action: "DeleteContainerGroup",
            resource_ids: vec!["eci-1".into()],
            resource_group: Some("rg-default".into()),
            decision,
            reason: "statement 0 of eci-tag-liumi-test".into(),
            latency_us: 12,
            cancelled: false,
        }
    }

    async fn write(log: &DecisionLog, entry: Entry, is_allow: bool) {
        if log.keeps(is_allow) {
            log.write_waiting(&mut Some(Box::new(entry)), is_allow)
                .await;
        }
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn denials_are_always_logged_and_allows_sampled() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("decisions.log");
        let log = DecisionLog::open(&Log {
            decisions: DecisionSink::File(path.clone()),
            allow_sample_rate: 0.0,
        })
        .unwrap();
        for _ in 0..20 {
            write(&log, entry("allow"), true).await;
        }
        write(&log, entry("deny"), false).await;
        write(&log, entry("silent_empty"), false).await;
        log.flush().await;
        let got = lines(&path);
        let decisions: Vec<&str> = got
            .iter()
            .map(|l| l["decision"].as_str().unwrap())
            .collect();
        assert_eq!(decisions, ["deny", "silent_empty"]);
        let first = &got[0];
        assert_eq!(first["time"], "1970-01-01T00:00:00Z");
        assert_eq!(first["principal"], "acs:ram::1234567890123456:user/liumi");
        assert_eq!(first["resource_ids"], serde_json::json!(["eci-1"]));
        assert_eq!(first["reason"], "statement 0 of eci-tag-liumi-test");
    }

    #[tokio::test]
    async fn a_full_sample_rate_logs_every_allow() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("decisions.log");
        let log = DecisionLog::open(&Log {
            decisions: DecisionSink::File(path.clone()),
            allow_sample_rate: 1.0,
        })
        .unwrap();
        for _ in 0..100 {
            write(&log, entry("allow"), true).await;
        }
        log.flush().await;
        assert_eq!(lines(&path).len(), 100);
    }

    proptest::proptest! {
        /// The hand-written line is exactly serde's, whatever the strings hold.
        #[test]
        fn lines_are_what_serde_writes(
            request_id in ".*", principal in ".*", ids in proptest::collection::vec(".*", 0..3),
            group in proptest::option::of(".*"), reason in ".*", latency_us: u64,
            cancelled: bool, nanos in 0u64..4_000_000_000_000_000_000,
        ) {
            let entry = Entry {
                time: SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
                request_id, principal, action: "DescribeContainerLog", resource_ids: ids,
                resource_group: group, decision: "allow", reason, latency_us, cancelled,
            };
            let mut line = Vec::new();
            encode(&mut line, &entry);
            let mut want = serde_json::to_vec(&entry).unwrap();
            want.push(b'\n');
            proptest::prop_assert_eq!(String::from_utf8(line).unwrap(), String::from_utf8(want).unwrap());
        }
    }

    #[test]
    fn sampling_draws_are_in_the_unit_interval() {
        for _ in 0..1000 {
            let x = rand_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
