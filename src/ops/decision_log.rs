//! The decision log: one JSON line per decision (time, request id, principal, action,
//! resource ids, resource group, decision, the statement or rule that decided, latency),
//! to stdout, a file, or nowhere. Allows may be sampled; denials never are. Lines are
//! written by a background task so a slow disk never holds a request.

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
    /// Must be called inside a tokio runtime (it spawns the writer).
    pub fn open(settings: &Log) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = match settings.decisions.as_str() {
            "off" => {
                return Ok(Self {
                    sender: None,
                    allow_sample_rate: 0.0,
                })
            }
            "stdout" => Box::new(std::io::stdout()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the decision log {path}: {e}"))?,
            ),
        };
        let (sender, receiver) = mpsc::channel(8192);
        tokio::spawn(write_lines(receiver, sink));
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
            let sender = sender.clone();
            tokio::spawn(async move {
                let _ = sender.send(Message::Line(entry)).await;
            });
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

async fn write_lines(mut receiver: mpsc::Receiver<Message>, mut sink: Box<dyn Write + Send>) {
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Line(entry) => {
                if let Ok(mut line) = serde_json::to_vec(&entry) {
                    line.push(b'\n');
                    let _ = sink.write_all(&line);
                }
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
}
