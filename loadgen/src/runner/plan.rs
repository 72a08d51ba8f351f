//! How a run is laid out: which executor runs which connections, producers and consumers,
//! and how many messages each producer owes in a `--messages` run. Pure functions.

use serde::Serialize;

/// One producer client instance (one connection to each broker) and the producers sharing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionShare {
    pub connection: u32,
    /// Global producer ids (0..producers).
    pub producers: Vec<u32>,
}

/// The work of one executor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExecutorShare {
    pub executor: usize,
    pub connections: Vec<ConnectionShare>,
    /// Consumer instance ids (0..consumers).
    pub consumers: Vec<u32>,
}

impl ExecutorShare {
    pub fn producer_count(&self) -> usize {
        self.connections.iter().map(|c| c.producers.len()).sum()
    }
}

/// Producer `p` uses connection `p % connections`; connection `c` and consumer `k` run on
/// executors `c % executors` and `k % executors`. Consumers are placed from the last executor
/// backwards, so with few connections producers and consumers do not pile onto executor 0.
pub fn assign(
    producers: u32,
    connections: u32,
    consumers: u32,
    executors: usize,
) -> Vec<ExecutorShare> {
    assert!(executors > 0, "at least one executor");
    assert!(
        connections > 0 && connections <= producers,
        "1 ≤ connections ≤ producers"
    );
    let mut shares: Vec<ExecutorShare> = (0..executors)
        .map(|executor| ExecutorShare {
            executor,
            ..ExecutorShare::default()
        })
        .collect();
    for c in 0..connections {
        let producers = (0..producers).filter(|p| p % connections == c).collect();
        shares[c as usize % executors]
            .connections
            .push(ConnectionShare {
                connection: c,
                producers,
            });
    }
    for k in 0..consumers {
        shares[executors - 1 - (k as usize % executors)]
            .consumers
            .push(k);
    }
    shares
}

/// Measured messages producer `p` of `producers` sends in a run of `total` messages: the
/// total split as evenly as possible (the first `total % producers` send one more).
pub fn producer_quota(total: u64, producers: u32, p: u32) -> u64 {
    let n = u64::from(producers);
    total / n + u64::from(u64::from(p) < total % n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_producer_and_consumer_is_placed_once() {
        let shares = assign(64, 8, 3, 2);
        let mut producers: Vec<u32> = shares
            .iter()
            .flat_map(|s| s.connections.iter().flat_map(|c| c.producers.clone()))
            .collect();
        producers.sort_unstable();
        assert_eq!(producers, (0..64).collect::<Vec<_>>());
        assert_eq!(shares[0].producer_count(), 32);
        assert_eq!(shares[1].producer_count(), 32);
        assert_eq!(shares[0].connections.len(), 4);
        assert_eq!(shares[1].consumers, vec![0, 2]);
        assert_eq!(shares[0].consumers, vec![1]);
        assert!(shares
            .iter()
            .all(|s| s.connections.iter().all(|c| c.producers.len() == 8)));
    }

    #[test]
    fn more_executors_than_work_leaves_some_idle() {
        let shares = assign(1, 1, 0, 4);
        assert_eq!(shares.len(), 4);
        assert_eq!(shares[0].producer_count(), 1);
        assert!(shares[1..]
            .iter()
            .all(|s| s.producer_count() == 0 && s.consumers.is_empty()));
    }

    #[test]
    fn quotas_sum_to_the_total() {
        for (total, producers) in [(10, 3), (0, 4), (5, 8), (1_000_003, 64)] {
            let sum: u64 = (0..producers)
                .map(|p| producer_quota(total, producers, p))
                .sum();
            assert_eq!(sum, total);
            let max = (0..producers)
                .map(|p| producer_quota(total, producers, p))
                .max();
            let min = (0..producers)
                .map(|p| producer_quota(total, producers, p))
                .min();
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1));
        }
    }
}
