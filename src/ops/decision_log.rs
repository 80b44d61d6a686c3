//! The decision log: one JSON line per decision (time, request id, principal, action,
//! resource ids, resource group, decision, the statement or rule that decided, latency),
//! to stdout, a file, or nowhere. Allows may be sampled; denials (and would-be denials,
//! silent empties, errors) never are. Lines are written by a thread of their own so a slow
//! disk never holds a request. An entry carries no credential: no header, no signature,
//! no access key id, only the principal's ARN.

use crate::config::Log;
use std::io::Write;
use std::time::SystemTime;
use tokio::sync::mpsc;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
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
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let t = time::OffsetDateTime::from(*t);
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    s.serialize_str(&text)
}

enum Message {
    Line(Entry),
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub struct DecisionLog {
    sender: Option<mpsc::Sender<Message>>,
    allow_sample_rate: f64,
}

impl DecisionLog {
    /// Opens the sink and starts its writer thread. Lines are written by a plain thread,
    /// not a runtime task: a slow disk then blocks that thread only, never a worker that
    /// serves requests.
    pub fn open(settings: &Log) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match settings.decisions.as_str() {
            "off" => {
                return Ok(Self {
                    sender: None,
                    allow_sample_rate: 0.0,
                })
            }
            "stdout" => Box::new(std::io::BufWriter::new(std::io::stdout())),
            path => Box::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the decision log {path}: {e}"))?,
            )),
        };
        let (sender, receiver) = mpsc::channel(8192);
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_lines(receiver, sink))
            .map_err(|e| format!("cannot start the decision log writer: {e}"))?;
        Ok(Self {
            sender: Some(sender),
            allow_sample_rate: settings.allow_sample_rate,
        })
    }

    /// Queues one line; waits (briefly) rather than dropping when the writer lags, because
    /// denials must never be lost.
    pub fn record(&self, entry: Entry, is_allow: bool) {
        let Some(sender) = &self.sender else { return };
        if is_allow && self.allow_sample_rate < 1.0 && rand_unit() >= self.allow_sample_rate {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(Message::Line(entry))) =
            sender.try_send(Message::Line(entry))
        {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let sender = sender.clone();
                    runtime.spawn(async move {
                        let _ = sender.send(Message::Line(entry)).await;
                    });
                }
                // Outside a runtime (not the proxy's case) a thread may simply wait.
                Err(_) => {
                    let _ = sender.blocking_send(Message::Line(entry));
                }
            }
        }
    }

    pub async fn flush(&self) {
        if let Some(sender) = &self.sender {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if sender.send(Message::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }
}

/// A uniform number in [0, 1) without a random-number crate: the low bits of a v4 uuid.
fn rand_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

fn write_lines(mut receiver: mpsc::Receiver<Message>, mut sink: Box<dyn Write + Send>) {
    while let Some(message) = receiver.blocking_recv() {
        match message {
            Message::Line(entry) => {
                if let Ok(mut line) = serde_json::to_vec(&entry) {
                    line.push(b'\n');
                    let _ = sink.write_all(&line);
                }
                // Buffered while lines queue up, written out as soon as the queue is empty.
                if receiver.is_empty() {
                    let _ = sink.flush();
                }
            }
            Message::Flush(done) => {
                let _ = sink.flush();
                let _ = done.send(());
            }
        }
    }
    let _ = sink.flush();
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
            decisions: path.display().to_string(),
            allow_sample_rate: 0.0,
        })
        .unwrap();
        for _ in 0..20 {
            log.record(entry("allow"), true);
        }
        log.record(entry("deny"), false);
        log.record(entry("silent_empty"), false);
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
            decisions: path.display().to_string(),
            allow_sample_rate: 1.0,
        })
        .unwrap();
        for _ in 0..100 {
            log.record(entry("allow"), true);
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
