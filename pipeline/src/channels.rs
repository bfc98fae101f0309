//! The channels between the executor's stages: bounded (a full channel blocks its producer),
//! one per (upstream worker, downstream worker) pair, and read in sequence order, so batch `k`
//! always travels from worker `k % up` to worker `k % down`. Every wait polls the run's cancel
//! flag, so no stage blocks forever on a stage that failed. The [`Window`] caps the batches
//! between the source and the sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::traits::RejectedRow;

/// One unit travelling between stages.
pub(crate) struct Envelope {
    pub(crate) seq: u64,
    pub(crate) batch: RecordBatch,
    pub(crate) rejected: Vec<RejectedRow>,
}

/// A worker's outgoing channels: batch `k` goes to downstream worker `k % senders.len()`.
#[derive(Default)]
pub(crate) struct Outbox {
    senders: Vec<Sender<Envelope>>,
}

/// A worker's incoming channels: it handles sequence numbers `first, first + step, ...`, and
/// batch `k` comes from upstream worker `k % receivers.len()`.
#[derive(Default)]
pub(crate) struct Inbox {
    receivers: Vec<Receiver<Envelope>>,
    next: u64,
    step: u64,
}

const POLL: Duration = Duration::from_millis(50);

/// Channels joining a stage of `up` workers to one of `down` workers.
pub(crate) fn link(up: usize, down: usize, capacity: usize) -> (Vec<Outbox>, Vec<Inbox>) {
    let mut outboxes: Vec<Outbox> = (0..up).map(|_| Outbox::default()).collect();
    let mut inboxes: Vec<Inbox> = (0..down)
        .map(|j| Inbox {
            receivers: Vec::with_capacity(up),
            next: j as u64,
            step: down as u64,
        })
        .collect();
    for outbox in outboxes.iter_mut() {
        for inbox in inboxes.iter_mut() {
            let (tx, rx) = bounded(capacity.max(1));
            outbox.senders.push(tx);
            inbox.receivers.push(rx);
        }
    }
    (outboxes, inboxes)
}

impl Outbox {
    /// Send, waiting while the consumer is busy; false if the run was cancelled or the
    /// consumer is gone.
    pub(crate) fn send(
        &self,
        mut env: Envelope,
        cancel: &AtomicBool,
        waited: &mut Duration,
    ) -> bool {
        let start = Instant::now();
        let tx = &self.senders[(env.seq % self.senders.len() as u64) as usize];
        let ok = loop {
            match tx.send_timeout(env, POLL) {
                Ok(()) => break true,
                Err(SendTimeoutError::Timeout(back)) => {
                    if cancel.load(Ordering::SeqCst) {
                        break false;
                    }
                    env = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => break false,
            }
        };
        *waited += start.elapsed();
        ok
    }
}

impl Inbox {
    /// The next batch in sequence, `None` at the end of the stream or on cancellation.
    pub(crate) fn recv(&mut self, cancel: &AtomicBool, waited: &mut Duration) -> Option<Envelope> {
        let start = Instant::now();
        let rx = &self.receivers[(self.next % self.receivers.len() as u64) as usize];
        let got = loop {
            if cancel.load(Ordering::SeqCst) {
                break None;
            }
            match rx.recv_timeout(POLL) {
                Ok(env) => break Some(env),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break None,
            }
        };
        *waited += start.elapsed();
        if let Some(env) = &got {
            debug_assert_eq!(env.seq, self.next, "batches arrive in sequence");
            self.next += self.step;
        }
        got
    }
}

/// The batches between the source and the sink: one slot per batch, taken by the source
/// before it reads a batch and given back by the sink once it has consumed it.
pub(crate) struct Window {
    slots: Sender<()>,
    taken: Receiver<()>,
}

impl Window {
    /// A window of `size` slots.
    pub(crate) fn new(size: usize) -> Self {
        let (slots, taken) = bounded(size);
        Window { slots, taken }
    }

    /// Take a slot, waiting while the window is full; false if the run was cancelled.
    pub(crate) fn take(&self, cancel: &AtomicBool, waited: &mut Duration) -> bool {
        let start = Instant::now();
        let ok = loop {
            match self.slots.send_timeout((), POLL) {
                Ok(()) => break true,
                Err(_) if cancel.load(Ordering::SeqCst) => break false,
                Err(SendTimeoutError::Timeout(())) => {}
                Err(SendTimeoutError::Disconnected(())) => break false,
            }
        };
        *waited += start.elapsed();
        ok
    }

    /// Give a slot back.
    pub(crate) fn give_back(&self) {
        let _ = self.taken.try_recv();
    }
}
