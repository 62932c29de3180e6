//! Instance-pool admission: every plugin gets a share of the pooling
//! allocator's slots that no other plugin can take, decided once at load.
//!
//! The pool is shared by every plugin on an engine, and a call holds one
//! stack, one component instance and as many linear memories and tables as
//! the component defines. Were calls admitted first come, first served, two
//! plugins driven to their concurrency could take every slot and every other
//! plugin's calls would fail. Instead each plugin's per-call cost is read from
//! the compiled component, and its concurrency is capped so that the sum of
//! what all plugins may hold at once fits the pool: when the plugins ask for
//! more than there is, the slots are divided max-min fairly (small demands are
//! met in full, the rest share what is left equally), so a hog only ever
//! limits itself. Core and component instances are plain counters in
//! wasmtime, sized so that only stacks, memories and tables can bind.

use wasmtime::component::Component;

/// Concurrent calls per engine (each needs one async stack and one component instance).
pub const POOL_CALLS: u32 = 1000;
/// Linear memories per engine.
pub const POOL_MEMORIES: u32 = 1000;
/// Tables per engine.
pub const POOL_TABLES: u32 = 2000;
/// Most core instances one component may create (as many pooled core
/// instances per call slot are provided, so they never bind).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Most memories one component may define.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 16;
/// Most tables one component may define.
pub const MAX_TABLES_PER_COMPONENT: u32 = 64;

/// What one call of a plugin holds in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCost {
    /// Linear memories the component defines.
    pub memories: u32,
    /// Tables the component defines.
    pub tables: u32,
}

impl CallCost {
    /// The cost of one instance of `component` (the per-component maximum
    /// when wasmtime cannot tell, which it can for every self-contained one).
    pub fn of(component: &Component) -> Self {
        match component.resources_required() {
            Some(r) => Self {
                memories: r.num_memories,
                tables: r.num_tables,
            },
            None => Self {
                memories: MAX_MEMORIES_PER_COMPONENT,
                tables: MAX_TABLES_PER_COMPONENT,
            },
        }
    }

    /// What one call takes of the pool's scarcest resource, in units of
    /// which the whole pool has [`POOL_UNITS`] (integers, so the division
    /// below never rounds past the pool).
    fn share(self) -> u64 {
        let (calls, memories, tables) = (
            u64::from(POOL_CALLS),
            u64::from(POOL_MEMORIES),
            u64::from(POOL_TABLES),
        );
        (memories * tables)
            .max(u64::from(self.memories) * calls * tables)
            .max(u64::from(self.tables) * calls * memories)
    }
}

/// The whole pool in the units of [`CallCost::share`].
const POOL_UNITS: u64 = POOL_CALLS as u64 * POOL_MEMORIES as u64 * POOL_TABLES as u64;

/// Concurrency each plugin may use, given what it asks for (`wanted`, its
/// manifest's `max_concurrency`) and its per-call cost; all plugins share one
/// pool. Zero means not even one call fits.
pub fn divide(plugins: &[(u32, CallCost)]) -> Vec<u32> {
    let demand: Vec<u64> = plugins
        .iter()
        .map(|(wanted, cost)| u64::from(*wanted) * cost.share())
        .collect();
    let mut order: Vec<usize> = (0..plugins.len()).collect();
    order.sort_by_key(|&i| demand[i]);
    let mut left = POOL_UNITS;
    let mut granted = vec![0; plugins.len()];
    for (done, &i) in order.iter().enumerate() {
        let fair = left / (plugins.len() - done) as u64;
        let cost = plugins[i].1.share();
        // Whole calls only: rounding down keeps the sum within the pool.
        let calls = demand[i].min(fair) / cost;
        granted[i] = u32::try_from(calls).unwrap_or(u32::MAX);
        left -= calls * cost;
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALM: CallCost = CallCost {
        memories: 1,
        tables: 1,
    };
    const HOG: CallCost = CallCost {
        memories: 16,
        tables: 1,
    };

    fn memories(plugins: &[(u32, CallCost)], granted: &[u32]) -> u32 {
        plugins
            .iter()
            .zip(granted)
            .map(|((_, c), k)| c.memories * k)
            .sum()
    }

    #[test]
    fn demands_that_fit_are_met_in_full() {
        let plugins = [(32, CALM); 7];
        assert_eq!(divide(&plugins), vec![32; 7]);
    }

    #[test]
    fn two_hogs_share_what_the_calm_plugins_leave_and_the_pool_never_overflows() {
        let plugins = [(32, HOG), (32, CALM), (256, HOG), (8, CALM)];
        let granted = divide(&plugins);
        assert_eq!(granted[1], 32);
        assert_eq!(granted[3], 8);
        assert!(granted[0] >= 29 && granted[2] >= 29, "{granted:?}");
        assert!(memories(&plugins, &granted) <= POOL_MEMORIES);
        assert!(granted.iter().sum::<u32>() <= POOL_CALLS);
    }

    #[test]
    fn many_plugins_each_keep_at_least_one_call() {
        let plugins = vec![(256, HOG); 60];
        let granted = divide(&plugins);
        assert!(granted.iter().all(|&k| (1..=2).contains(&k)), "{granted:?}");
        assert!(memories(&plugins, &granted) <= POOL_MEMORIES);
    }
}
