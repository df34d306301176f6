//! A family whose series are capped: its labels come from strangers (gRPC paths), who must not
//! be able to grow the series, and the memory holding them, without bound.

use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::family::Family;

/// A [`Family`] of at most `max_series` label sets; past that, new label sets are counted
/// under an overflow label set the caller names (e.g. `other`).
#[derive(Debug)]
pub struct BoundedFamily<L, M> {
    family: Family<L, M>,
    max_series: usize,
    /// Label sets admitted (overflow ones aside), held while one is admitted so the check and
    /// the insert are one step. (`Family` keeps its length to itself.)
    admitted: Arc<Mutex<usize>>,
}

impl<L, M> Clone for BoundedFamily<L, M> {
    fn clone(&self) -> Self {
        Self {
            family: self.family.clone(),
            max_series: self.max_series,
            admitted: self.admitted.clone(),
        }
    }
}

impl<L, M> BoundedFamily<L, M>
where
    L: Clone + Hash + Eq,
    M: Default + Clone,
{
    pub fn new(max_series: usize) -> Self {
        Self {
            family: Family::default(),
            max_series,
            admitted: Arc::default(),
        }
    }

    /// The metric of `labels`, or of `overflow` (built only when needed) once the family holds
    /// `max_series` label sets and `labels` is not one of them. The family then holds at most
    /// `max_series` plus the overflow label sets.
    pub fn get_or_overflow(&self, labels: &L, overflow: impl FnOnce() -> L) -> M {
        if let Some(metric) = self.family.get(labels) {
            return M::clone(&metric);
        }
        // A panic elsewhere while admitting leaves the family usable.
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have admitted `labels` since the look-up above.
        if let Some(metric) = self.family.get(labels) {
            return M::clone(&metric);
        }
        if *admitted < self.max_series {
            *admitted += 1;
            self.family.get_or_create_owned(labels)
        } else {
            self.family.get_or_create_owned(&overflow())
        }
    }

    /// The family, to register in a scrape's registry.
    pub fn family(&self) -> &Family<L, M> {
        &self.family
    }
}
