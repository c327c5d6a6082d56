//! SIGINT (Ctrl-C) and SIGTERM (`docker stop`, systemd, Slurm, `kill`) stop a sweep the same way:
//! the executor stops admitting runs, cancels those in flight (killing each command adapter's
//! process group) and syncs the journal, so the same command resumes. The exit code tells which
//! signal it was: 130 for SIGINT, 143 for SIGTERM (128 + the signal number, as shells report it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Which signal stopped the command: 0 none, else its exit code (130 or 143).
static RECEIVED: AtomicU8 = AtomicU8::new(0);

/// The exit code of the signal received so far (130 when none: the `--abort-after` test hook).
pub(crate) fn interrupted_exit_code() -> u8 {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => crate::EXIT_INTERRUPTED,
        c => c,
    }
}

/// The name of the signal received, for the message.
pub(crate) fn received_name() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        crate::EXIT_INTERRUPTED => Some("SIGINT"),
        crate::EXIT_TERMINATED => Some("SIGTERM"),
        _ => None,
    }
}

/// Resolves at the first SIGINT or SIGTERM, recording which.
pub(crate) async fn wait_for_interrupt() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        match term {
            Ok(mut term) => {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => {
                        if r.is_err() {
                            std::future::pending::<()>().await;
                        }
                        RECEIVED.store(crate::EXIT_INTERRUPTED, Ordering::SeqCst);
                    }
                    _ = term.recv() => RECEIVED.store(crate::EXIT_TERMINATED, Ordering::SeqCst),
                }
                return;
            }
            Err(e) => tracing::warn!("cannot handle SIGTERM ({e}); only Ctrl-C stops cleanly"),
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        RECEIVED.store(crate::EXIT_INTERRUPTED, Ordering::SeqCst);
    } else {
        std::future::pending::<()>().await;
    }
}

/// Spawns the listener: `interrupt` (returned) is notified at the first SIGINT or SIGTERM
/// (abort the handle when done); a caller such as the console may also notify it to cancel.
pub(crate) fn spawn_interrupt_listener_for(
    interrupt: Arc<Notify>,
) -> (Arc<Notify>, JoinHandle<()>) {
    let n = interrupt.clone();
    let handle = tokio::spawn(async move {
        wait_for_interrupt().await;
        n.notify_one();
    });
    (interrupt, handle)
}
