//! Ctrl+C (and SIGTERM, SIGHUP, SIGQUIT) while labs run: counted, never fatal by itself.
//!
//! The first interrupt stops the running step of every lab, which then runs its cleanup steps and
//! tears down; the second also stops cleanup. Lab commands run in their own process groups, so a
//! Ctrl+C typed in the terminal reaches only labbook, which decides what each lab should stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A shared count of the interrupts received so far.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

/// Installing the signal handlers failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to install the Ctrl+C handler")]
pub struct InstallError(#[source] std::io::Error);

impl Interrupt {
    /// How many interrupts were received.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Records an interrupt, as a signal would.
    pub fn trigger(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts SIGINT, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT from now on, on a thread
    /// of its own. Returns once the handlers are in place, so that no signal sent after this
    /// call is missed. `on_signal` is called
    /// with the new count after each one (to tell the user what happens next).
    pub fn install(&self, on_signal: fn(usize)) -> Result<(), InstallError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let counter = self.clone();
        std::thread::Builder::new()
            .name("labbook-signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    // Each of them ends labbook gracefully: the labs' cleanup runs and nothing
                    // they started is left running.
                    let handlers = signal(SignalKind::interrupt()).and_then(|int| {
                        Ok((
                            int,
                            signal(SignalKind::terminate())?,
                            signal(SignalKind::hangup())?,
                            signal(SignalKind::quit())?,
                        ))
                    });
                    let (mut int, mut term, mut hup, mut quit) = match handlers {
                        Ok(h) => h,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                            _ = hup.recv() => {}
                            _ = quit.recv() => {}
                        }
                        counter.trigger();
                        on_signal(counter.count());
                    }
                });
            })
            .map_err(InstallError)?;
        match ready_rx.recv() {
            Ok(result) => result.map_err(InstallError),
            Err(_) => Err(InstallError(std::io::Error::other(
                "the signal thread stopped",
            ))),
        }
    }
}
