//! `query-keys`: QUERY_MESSAGE latency for keys that are in the store.
//!
//! The keys come from the JSON results of `run --keys --messages N` runs ([`crate::key_space`]):
//! `--lookups` distinct keys drawn uniformly over all of them (a fixed seed, so repeated runs
//! look up the same keys). Each lookup is timed on its own, one at a time (latency, not
//! throughput): QUERY_MESSAGE by key to every master broker of the key's topic, from the
//! request to the last answer. A lookup counts as found when an answer holds a message whose
//! KEYS include the key (the index matches key hashes, so the key itself is checked, as Java's
//! client does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig, KeyKind, MessageExt};
use serde::Serialize;

use crate::catch_up::write_json;
use crate::cli::QueryKeysArgs;
use crate::clock;
use crate::key_space::{self, RunKeys, TopicKey};
use crate::latency::{LatencyHistogram, PercentileSummary};

/// Registered I/O memory of the lookups' executor (no DMA file I/O here).
const IO_MEMORY_BYTES: usize = 1 << 20;
/// The stored-time range of every lookup: all of it.
const ALL_TIME_MS: (i64, i64) = (0, i64::MAX);

/// One key source as the result records it.
#[derive(Clone, Debug, Serialize)]
pub struct KeySourceFacts {
    pub run_id: u32,
    pub messages: u64,
}

/// What the lookups counted and timed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LookupTally {
    pub lookups: u64,
    pub found: u64,
    pub not_found: u64,
    /// Lookups with at least one failed request (timed all the same).
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    /// False when the time limit stopped the lookups early.
    pub complete: bool,
    /// Every lookup, in microseconds.
    pub latency: PercentileSummary,
    /// Found lookups only.
    pub latency_found: PercentileSummary,
}

/// The result of `query-keys`, as printed and written.
#[derive(Clone, Debug, Serialize)]
pub struct QueryKeysResult {
    pub tool: String,
    pub tool_version: String,
    pub label: String,
    pub started_at_utc: String,
    pub settings: QueryKeysArgs,
    pub key_sources: Vec<KeySourceFacts>,
    /// Keys the sources hold, the population the sample was drawn from.
    pub keys_in_sources: u64,
    /// Master brokers asked per lookup (the most over the keys' topics).
    pub brokers_per_lookup: usize,
    pub tally: LookupTally,
}

/// `ringmq-loadgen query-keys`.
pub fn command(args: QueryKeysArgs) -> anyhow::Result<QueryKeysResult> {
    args.tool.results.validate()?;
    let runs = (args.keys_from.iter())
        .map(|p| RunKeys::from_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = key_space::sample(&runs, args.lookups, args.seed)?;
    let started_unix_secs = clock::unix_now_secs();
    let moved = args.clone();
    let (brokers_per_lookup, tally) = LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen-query-keys")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .map_err(|e| anyhow::anyhow!("starting the query executor: {e}"))?
        .run(async move { look_up(&moved, &keys).await })?;
    let result = QueryKeysResult {
        tool: "ringmq-loadgen".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        label: (args.tool.results.label.clone()).unwrap_or_else(|| "keys".into()),
        started_at_utc: clock::iso8601_utc(started_unix_secs),
        key_sources: (runs.iter())
            .map(|r| KeySourceFacts {
                run_id: r.run_id,
                messages: r.messages,
            })
            .collect(),
        keys_in_sources: runs.iter().map(|r| r.messages).sum(),
        brokers_per_lookup,
        tally,
        settings: args,
    };
    print!("{}", result.text_report());
    let stem = format!(
        "query-keys-{}-{}",
        clock::compact_utc(started_unix_secs),
        result.label
    );
    if let Some(path) = write_json(&result.settings.tool.results.results_dir, &stem, &result)? {
        println!("results  {}", path.display());
    }
    Ok(result)
}

/// The master brokers of every topic the keys are in.
async fn masters(
    admin: &Admin,
    keys: &[TopicKey],
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut masters = BTreeMap::new();
    for key in keys {
        if !masters.contains_key(&key.topic) {
            let route = (admin.topic_route(&key.topic).await)
                .with_context(|| format!("route of topic {}", key.topic))?;
            masters.insert(key.topic.clone(), route.master_addrs());
        }
    }
    Ok(masters)
}

/// Times one lookup of each key; returns the brokers asked per lookup and the tally.
async fn look_up(args: &QueryKeysArgs, keys: &[TopicKey]) -> anyhow::Result<(usize, LookupTally)> {
    let mut config = ClientConfig::new(&args.tool.namesrv)?;
    config.credentials = args.tool.results.credentials();
    let admin = Admin::new(config)?;
    let masters = masters(&admin, keys).await?;
    let brokers = masters.values().map(Vec::len).max().unwrap_or(0);
    let mut recorder = Recorder::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut complete = true;
    for key in keys {
        if Instant::now() >= deadline || crate::process::interrupted() {
            complete = false;
            break;
        }
        let lookup_started = Instant::now();
        let mut found = false;
        let mut error = None;
        for addr in &masters[&key.topic] {
            let answer = admin
                .query_message(
                    addr,
                    &key.topic,
                    &key.key,
                    KeyKind::Key,
                    args.max_per_lookup,
                    ALL_TIME_MS,
                )
                .await;
            match answer {
                Ok(messages) => found |= messages.iter().any(|m| has_key(m, &key.key)),
                Err(e) => error = Some(format!("{addr}: {e}")),
            }
        }
        recorder.record(lookup_started.elapsed(), found, error);
    }
    admin.shutdown();
    Ok((brokers, recorder.finish(started.elapsed(), complete)))
}

fn has_key(message: &MessageExt, key: &str) -> bool {
    message
        .keys()
        .is_some_and(|keys| keys.split(' ').any(|k| k == key))
}

/// Counts and histograms of the lookups so far.
#[derive(Default)]
struct Recorder {
    tally: LookupTally,
    all: LatencyHistogram,
    found: LatencyHistogram,
}

impl Recorder {
    fn record(&mut self, took: Duration, found: bool, error: Option<String>) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let t = &mut self.tally;
        t.lookups += 1;
        self.all.record_us(us);
        if found {
            t.found += 1;
            self.found.record_us(us);
        } else {
            t.not_found += 1;
        }
        if let Some(e) = error {
            t.errors += 1;
            t.first_error.get_or_insert(e);
        }
    }

    fn finish(mut self, took: Duration, complete: bool) -> LookupTally {
        self.tally.secs = took.as_secs_f64();
        self.tally.complete = complete;
        self.tally.latency = self.all.summary();
        self.tally.latency_found = self.found.summary();
        self.tally
    }
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1_000.0)
}

impl QueryKeysResult {
    /// The printed report.
    pub fn text_report(&self) -> String {
        let t = &self.tally;
        let mut out = String::new();
        let _ =
            writeln!(
            out,
            "query-keys {} lookups of keys drawn from {} stored by {} run(s), {} broker(s) each, \
             one at a time: found {}, not found {}, with errors {}{}",
            t.lookups,
            self.keys_in_sources,
            self.key_sources.len(),
            self.brokers_per_lookup,
            t.found,
            t.not_found,
            t.errors,
            if t.complete { "" } else { ", INCOMPLETE: time limit reached" }
        );
        let l = &t.latency;
        let _ = writeln!(
            out,
            "latency  p50 {} ms, p90 {} ms, p99 {} ms, max {} ms (all lookups, n={})",
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.max_us),
            l.count
        );
        if let Some(e) = &t.first_error {
            let _ = writeln!(out, "first error: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> QueryKeysArgs {
        let mut all = vec!["ringmq-loadgen", "query-keys", "--keys-from", "a.json"];
        all.extend_from_slice(extra);
        match Cli::try_parse_from(all).expect("parses").command {
            Command::QueryKeys(a) => a,
            _ => unreachable!("parsed query-keys"),
        }
    }

    #[test]
    fn flags_parse_and_a_key_source_is_required() {
        let a = args(&["--keys-from", "b.json", "--lookups", "50"]);
        assert_eq!(a.keys_from.len(), 2);
        assert_eq!(a.lookups, 50);
        assert_eq!(a.seed, crate::cli::QUERY_KEYS_DEFAULT_SEED);
        assert_eq!(a.max_per_lookup, crate::cli::QUERY_KEYS_DEFAULT_MAX);
        assert!(Cli::try_parse_from(["ringmq-loadgen", "query-keys"]).is_err());
        let zero = [
            "ringmq-loadgen",
            "query-keys",
            "--keys-from",
            "a",
            "--lookups",
            "0",
        ];
        assert!(Cli::try_parse_from(zero).is_err());
    }

    #[test]
    fn the_recorder_counts_outcomes_and_takes_percentiles_of_every_lookup() {
        let mut r = Recorder::default();
        for i in 1..=100u64 {
            // 1 ms … 100 ms; every tenth not found, the last one with an error.
            let error = (i == 100).then(|| "b: timeout".to_string());
            r.record(Duration::from_millis(i), i % 10 != 0, error);
        }
        let t = r.finish(Duration::from_secs(5), true);
        assert_eq!(
            (t.lookups, t.found, t.not_found, t.errors),
            (100, 90, 10, 1)
        );
        assert_eq!(t.first_error.as_deref(), Some("b: timeout"));
        assert!(
            (49_900..=50_100).contains(&t.latency.p50_us),
            "{:?}",
            t.latency
        );
        assert!(
            (98_900..=99_100).contains(&t.latency.p99_us),
            "{:?}",
            t.latency
        );
        assert_eq!(t.latency_found.count, 90);
    }

    #[test]
    fn the_report_gives_milliseconds_and_flags_an_incomplete_run() {
        let mut r = Recorder::default();
        r.record(Duration::from_micros(1_500), true, None);
        let result = QueryKeysResult {
            tool: "ringmq-loadgen".into(),
            tool_version: "0".into(),
            label: "keys".into(),
            started_at_utc: String::new(),
            settings: args(&[]),
            key_sources: vec![KeySourceFacts {
                run_id: 1,
                messages: 10,
            }],
            keys_in_sources: 10,
            brokers_per_lookup: 1,
            tally: r.finish(Duration::from_secs(1), false),
        };
        let text = result.text_report();
        assert!(text.contains("p50 1.500 ms"), "{text}");
        assert!(text.contains("found 1, not found 0"), "{text}");
        assert!(text.contains("INCOMPLETE"), "{text}");
    }
}
