//! Ctrl-C presses, and what each one does to the job being followed.

use tokio::sync::mpsc;

use super::Notice;
use crate::api::Api;

/// Ctrl-C presses, delivered by the binary's signal handler or by a test.
#[derive(Debug, Default)]
pub struct Interrupts(Option<mpsc::UnboundedReceiver<()>>);

impl Interrupts {
    /// No interrupts will ever come.
    pub fn none() -> Self {
        Self(None)
    }

    /// A sender to press Ctrl-C with, and the receiving end.
    pub fn channel() -> (mpsc::UnboundedSender<()>, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Self(Some(rx)))
    }

    /// The process's Ctrl-C presses (SIGINT), each one: the signal handler
    /// writes a byte per signal to a socket that a task reads, so presses
    /// that come faster than the runtime looks are not merged into one (as
    /// `tokio::signal::ctrl_c` would). Needs a Tokio runtime.
    pub fn sigint() -> std::io::Result<Self> {
        use tokio::io::AsyncReadExt;
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        write.set_nonblocking(true)?;
        read.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
        let mut read = tokio::net::UnixStream::from_std(read)?;
        let (tx, interrupts) = Self::channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = read.read(&mut buf).await {
                for _ in 0..n {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(interrupts)
    }

    /// A press already waiting, if any.
    pub(super) fn try_next(&mut self) -> bool {
        self.0.as_mut().is_some_and(|rx| rx.try_recv().is_ok())
    }

    /// Forgets the presses waiting.
    pub(super) fn drain(&mut self) {
        while self.try_next() {}
    }

    /// Waits for the next press; never returns once the sender is gone.
    /// Public for callers that pass presses on (a rollout's waves).
    pub async fn next(&mut self) {
        if let Some(rx) = &mut self.0 {
            if rx.recv().await.is_some() {
                return;
            }
            self.0 = None;
        }
        std::future::pending::<()>().await;
    }
}

/// The escalation of presses while one job runs: stop, force-stop, detach.
#[derive(Debug, Default)]
pub(super) struct Escalation {
    presses: u32,
}

/// What a press led to.
pub(super) enum Press {
    /// The job was (or could not be) stopped; keep following.
    Stopping(Notice),
    /// Stop following.
    Detach,
}

impl Escalation {
    /// True once a press asked the job to stop.
    pub(super) fn pressed(&self) -> bool {
        self.presses > 0
    }

    /// Handles one press for `job`.
    pub(super) async fn press<A: Api>(&mut self, api: &A, job: &str) -> Press {
        self.presses += 1;
        let job = job.to_owned();
        match self.presses {
            1 => Press::Stopping(match api.stop(&job, false).await {
                Ok(_) => Notice::StopRequested { job },
                Err(e) => Notice::StopFailed {
                    job,
                    error: e.to_string(),
                },
            }),
            2 => Press::Stopping(match api.stop(&job, true).await {
                Ok(_) => Notice::ForceStopRequested { job },
                Err(e) => Notice::ForceStopFailed {
                    job,
                    error: e.to_string(),
                },
            }),
            _ => Press::Detach,
        }
    }
}
