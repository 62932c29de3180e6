//! CPU fairness: calls that run long take turns on the CPU, so a plugin
//! spinning at full concurrency cannot starve short calls or other plugins.
//!
//! Every epoch tick (10 ms) a running guest reaches its deadline callback.
//! For its first [`FREE_TICKS`] ticks it only yields to the async runtime, so
//! short calls (almost all of them) never wait for anything. After that it
//! must hold a *turn* to go on: one of the process's turns (one per core) and
//! one of its own plugin's turns (as many, so a plugin alone can use every
//! core). At each tick the turn is given back and the guest queues for the
//! next one behind the others (FIFO), so long calls round-robin, at most one
//! per core runs at a time while the rest wait parked in a semaphore queue,
//! not on a worker thread's run queue, and a short call finds a worker within
//! a tick. Because each plugin queues at most one call per core for the
//! process's turns, plugins get comparable shares however many calls each
//! has in flight. The wait is bounded by the call's deadline, after which the
//! next tick stops the guest. (Keeping a core free of long calls was measured
//! too: it halved their throughput on 2 cores without making short calls
//! measurably faster.)
//!
//! A turn is also taken back after [`MAX_TURN`] whatever the guest does, so
//! a guest that gets a turn and then blocks in a host call (a sleep, a slow
//! HTTP response), where no tick reaches it, cannot keep it.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// Ticks a call runs before it needs a turn.
pub const FREE_TICKS: u32 = 2;

/// Longest a turn is held before it is taken back.
pub const MAX_TURN: std::time::Duration = std::time::Duration::from_millis(20);

/// Turns for long-running guests across the whole process: one per core.
pub fn turns() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

static GLOBAL: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(turns())));

/// A plugin's own turns (one per global turn).
pub fn plugin_turns() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(turns()))
}

type Turn = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// The turn a call holds, numbered so that a timer for an earlier turn
/// cannot take back a later one.
type Held = Arc<Mutex<(u64, Option<Turn>)>>;

/// One call's place in the rotation.
pub struct CallTurns {
    plugin: Arc<Semaphore>,
    held: Held,
    ticks: u32,
    deadline: tokio::time::Instant,
}

impl CallTurns {
    /// A call of the plugin whose turns are `plugin`, stopped at `deadline`.
    pub fn new(plugin: Arc<Semaphore>, deadline: std::time::Instant) -> Self {
        Self {
            plugin,
            held: Arc::default(),
            ticks: 0,
            deadline: deadline.into(),
        }
    }

    /// What the guest does at this tick: yield, or give its turn back and
    /// queue for the next one.
    pub fn tick(&mut self) -> UpdateDeadline {
        self.ticks = self.ticks.saturating_add(1);
        if self.ticks <= FREE_TICKS {
            return UpdateDeadline::Yield(1);
        }
        let held = self.held.clone();
        drop(held.lock().unwrap_or_else(PoisonError::into_inner).1.take());
        let plugin = self.plugin.clone();
        let deadline = self.deadline;
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let turn = async {
                    let mine = plugin.acquire_owned().await.ok()?;
                    let global = GLOBAL.clone().acquire_owned().await.ok()?;
                    Some((mine, global))
                };
                if let Ok(Some(turn)) = tokio::time::timeout_at(deadline, turn).await {
                    let number = {
                        let mut slot = held.lock().unwrap_or_else(PoisonError::into_inner);
                        slot.0 += 1;
                        slot.1 = Some(turn);
                        slot.0
                    };
                    // Taken back after MAX_TURN even if no tick comes (the
                    // guest blocked in a host call); a later turn is left alone.
                    let held = Arc::downgrade(&held);
                    tokio::spawn(async move {
                        tokio::time::sleep(MAX_TURN).await;
                        if let Some(held) = held.upgrade() {
                            let mut slot = held.lock().unwrap_or_else(PoisonError::into_inner);
                            if slot.0 == number {
                                slot.1 = None;
                            }
                        }
                    });
                }
                // Always let the worker run other tasks, even when a turn was free.
                tokio::task::yield_now().await;
            }),
        )
    }
}
