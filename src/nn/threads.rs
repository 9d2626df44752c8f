//! How many threads the CPU kernels of this crate may use. A caller that
//! already runs several models side by side (an ensemble's members, one per
//! core) gives each a budget of one: nested two-thread gemms on two cores
//! ran the translator's output layer at 60% of the speed of one each.

use std::cell::Cell;

thread_local! {
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The threads a kernel called on this thread may use.
pub fn budget() -> usize {
    BUDGET.with(Cell::get).unwrap_or_else(machine).max(1)
}

/// candle's thread count, read once: candle reads the environment and
/// `/proc/cpuinfo` on every call, a tenth of a batch-1 LSTM forward.
pub fn machine() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(candle_core::utils::get_num_threads)
}

/// Runs `f` with the budget on this thread set to `threads`.
pub fn with_budget<T>(threads: usize, f: impl FnOnce() -> T) -> T {
    let before = BUDGET.with(|b| b.replace(Some(threads.max(1))));
    // Restored on unwind too, so a caught panic leaves no stale budget.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_holds_inside_its_scope_and_is_restored_after() {
        let outside = budget();
        let inside = with_budget(1, || (budget(), with_budget(3, budget), budget()));
        assert_eq!(inside, (1, 3, 1));
        assert_eq!(budget(), outside);
    }
}
