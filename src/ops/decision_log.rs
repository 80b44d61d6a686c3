//! The decision log: one JSON line per decided request (time, request id, principal,
//! action, resource ids, resource group, decision, the statement or rule that decided,
//! latency, and whether the client went away before the answer), to stdout, a file, or
//! nowhere. Allows may be sampled; denials (and would-be denials, silent empties, errors)
//! never are. An entry carries no credential: no header, no signature, no access key id,
//! only the principal's ARN.
//!
//! Lines go through a bounded queue (`QUEUE_LINES`) to one writer thread, so memory is
//! bounded whatever the sink does, and a slow sink blocks that thread, never a runtime
//! worker. When the queue is full (the sink is slower than the traffic):
//!
//! * an allow is dropped and counted in `ramgate_decision_log_dropped_total` — allows are
//!   already subject to sampling, and the request was forwarded either way;
//! * anything else waits for room before its answer is sent: a denial is never lost,
//!   and the callers being refused are the ones slowed, by exactly as much as the sink is.
//!
//! A request cancelled before its answer (its record written from `Drop`) cannot wait
//! asynchronously: its non-allow line blocks that thread until there is room, which
//! happens only when the queue is full as well, and is bounded by how fast the sink drains.

use super::metrics::{self, DroppedBecause};
use crate::config::{DecisionSink, Log};
use std::io::Write;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::Notify;

/// Lines queued for the writer at most (a few megabytes of entries).
pub(crate) const QUEUE_LINES: usize = 4096;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Entry {
    #[serde(serialize_with = "rfc3339")]
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let t = time::OffsetDateTime::from(*t);
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    s.serialize_str(&text)
}

enum Message {
    Line(Box<Entry>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub(crate) struct DecisionLog {
    queue: Option<Queue>,
    allow_sample_rate: f64,
}

struct Queue {
    sender: SyncSender<Message>,
    /// Notified by the writer each time it takes a message off the queue.
    room: Arc<Notify>,
}

impl DecisionLog {
    /// Opens the sink and starts its writer thread.
    pub(crate) fn open(settings: &Log) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match &settings.decisions {
            DecisionSink::Off => {
                return Ok(Self {
                    queue: None,
                    allow_sample_rate: 0.0,
                })
            }
            DecisionSink::Stdout => Box::new(std::io::BufWriter::new(std::io::stdout())),
            DecisionSink::File(path) => Box::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the decision log {}: {e}", path.display()))?,
            )),
        };
        let (sender, receiver) = mpsc::sync_channel(QUEUE_LINES);
        let room = Arc::new(Notify::new());
        let writer_room = room.clone();
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_lines(receiver, sink, &writer_room))
            .map_err(|e| format!("cannot start the decision log writer: {e}"))?;
        Ok(Self {
            queue: Some(Queue { sender, room }),
            allow_sample_rate: settings.allow_sample_rate,
        })
    }

    /// Whether decision lines are written at all.
    pub(crate) fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Whether a line is to be written for this request (allows are sampled). Drawn once
    /// per request.
    pub(crate) fn keeps(&self, is_allow: bool) -> bool {
        self.queue.is_some()
            && !(is_allow && self.allow_sample_rate < 1.0 && rand_unit() >= self.allow_sample_rate)
    }

    /// Queues the line in `slot` (taking it), waiting for room unless it is an allow, which
    /// is dropped and counted when the queue is full. Cancel-safe: while it waits, the line
    /// stays in `slot`, for the caller to write some other way.
    pub(crate) async fn write_waiting(&self, slot: &mut Option<Box<Entry>>, is_allow: bool) {
        let Some(queue) = &self.queue else {
            *slot = None;
            return;
        };
        loop {
            // Registered before trying, so room made in between is not missed.
            let room = queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let Some(entry) = slot.take() else { return };
            match queue.sender.try_send(Message::Line(entry)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(_)) if is_allow => {
                    metrics::decision_log_dropped(DroppedBecause::QueueFull);
                    return;
                }
                Err(TrySendError::Full(back)) => {
                    if let Message::Line(entry) = back {
                        *slot = Some(entry);
                    }
                    room.await;
                }
            }
        }
    }

    /// [`Self::write_waiting`] from synchronous code (a request record dropped mid-flight):
    /// a line that is not an allow blocks this thread until there is room.
    pub(crate) fn write_blocking(&self, entry: Box<Entry>, is_allow: bool) {
        let Some(queue) = &self.queue else { return };
        let sent = if is_allow {
            queue.sender.try_send(Message::Line(entry))
        } else {
            queue
                .sender
                .send(Message::Line(entry))
                .map_err(|e| TrySendError::Disconnected(e.0))
        };
        if let Err(TrySendError::Full(_)) = sent {
            metrics::decision_log_dropped(DroppedBecause::QueueFull);
        }
    }

    /// Waits until every line queued so far is written to the sink.
    pub(crate) async fn flush(&self) {
        if let Some(queue) = &self.queue {
            let (tx, rx) = tokio::sync::oneshot::channel();
            queue.send_waiting(Message::Flush(tx)).await;
            let _ = rx.await;
        }
    }
}

impl Queue {
    async fn send_waiting(&self, mut message: Message) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.sender.try_send(message) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    message = back;
                    room.await;
                }
            }
        }
    }
}

/// A uniform number in [0, 1) without a random-number crate: the low bits of a v4 uuid.
fn rand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The writer thread: lines are buffered while more are queued, and written out as soon as
/// the queue is empty. A sink that fails loses lines: each is counted, and the first
/// failure of a run is logged.
fn write_lines(receiver: mpsc::Receiver<Message>, mut sink: Box<dyn Write + Send>, room: &Notify) {
    let mut failing = false;
    let mut outcome = |result: std::io::Result<()>| match result {
        Ok(()) => failing = false,
        Err(e) => {
            metrics::decision_log_dropped(DroppedBecause::WriteFailed);
            if !failing {
                tracing::error!("the decision log cannot be written: {e}");
            }
            failing = true;
        }
    };
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            room.notify_waiters();
            match message {
                Message::Line(entry) => outcome(write_line(&mut sink, &entry)),
                Message::Flush(done) => {
                    outcome(sink.flush());
                    let _ = done.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(e) = sink.flush() {
            tracing::debug!("the decision log cannot be flushed: {e}");
        }
    }
    let _ = sink.flush();
}

fn write_line(sink: &mut impl Write, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    sink.write_all(&line)
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

    #[test]
    fn sampling_draws_are_in_the_unit_interval() {
        for _ in 0..1000 {
            let x = rand_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
