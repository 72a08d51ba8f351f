//! Scheduled delivery: RocketMQ 4.x delay levels and 5.x timer messages (issue 10).
//!
//! * [`plan`] — the send-side decision (pure): immediate, held for a delay level in
//!   `SCHEDULE_TOPIC_XXXX` queue `level - 1`, or held as a timer in `rmq_sys_wheel_timer` queue 0;
//!   and the properties of held and delivered records.
//! * [`timers`] — the pending timers of one shard, in due order (in memory, rebuilt on start).
//! * [`progress`] — the persisted progress page (per-level offsets, the timer watermark).
//! * [`phases`] — where the delivery task's time goes (measured, logged at stop).
//! * [`service`] — the delivery task a shard runs over its own store: reads due times from the
//!   consume queues' tag slots, re-puts due messages into their real topics, persists progress.
//! * [`mirror`] — a slave shard's copy of its master shard's progress, kept in the same file.
//!
//! A held record lives in the log of the shard that owns its real (topic, queue), so delivery
//! is a local append and nothing crosses shards. This module never imports `server/`.

pub mod mirror;
pub mod phases;
pub mod plan;
pub mod progress;
pub mod service;
pub mod timers;

pub use mirror::{MasterProgress, ScheduleMirror};
pub use plan::{hold, hold_batch, plan, Held, Placement, PlanError};
pub use service::{ScheduleService, ServiceStats};

/// What a shard runs over its held messages: the delivery task on a master, the copy of the
/// master's progress on a slave (which delivers nothing: its log is a copy of the master's).
pub enum ShardSchedule {
    Delivery(ScheduleService),
    Mirror(ScheduleMirror),
}

impl ShardSchedule {
    /// The shard's progress: delivered (master) or copied from the master (slave).
    pub fn progress(&self) -> progress::Progress {
        match self {
            ShardSchedule::Delivery(service) => service.progress(),
            ShardSchedule::Mirror(mirror) => mirror.progress(),
        }
    }

    /// Stops the task, with its progress written.
    pub async fn stop(&self) {
        match self {
            ShardSchedule::Delivery(service) => service.stop().await,
            ShardSchedule::Mirror(mirror) => mirror.stop().await,
        }
    }
}

/// Java's `TopicValidator.RMQ_SYS_SCHEDULE_TOPIC`: delay-level messages, queue = level - 1.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Java's `TimerMessageStore.TIMER_TOPIC`: timer messages, queue 0.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
/// Java's default `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// Java's default `timerMaxDelaySec` (3 days).
pub const DEFAULT_TIMER_MAX_DELAY_SEC: u64 = 3 * 24 * 3600;
/// Most delay levels a configuration may define (the progress page has room for this many).
pub const MAX_DELAY_LEVELS: usize = 64;

const _: () = assert!(
    SCHEDULE_TOPIC.len() <= 127 && TIMER_TOPIC.len() <= 127,
    "system topics fit a V1 record"
);

/// What the schedule service and the send path are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Delay of level `i + 1`, milliseconds (`messageDelayLevel`).
    pub level_delays_ms: Vec<u64>,
    /// Timers due further ahead are refused (`timerMaxDelaySec`).
    pub timer_max_delay_sec: u64,
    /// Timer messages are accepted (`timerWheelEnable`).
    pub timer_enabled: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            level_delays_ms: parse_delay_levels(DEFAULT_DELAY_LEVELS)
                .expect("default levels parse"),
            timer_max_delay_sec: DEFAULT_TIMER_MAX_DELAY_SEC,
            timer_enabled: true,
        }
    }
}

impl ScheduleConfig {
    /// Highest level (levels are 1-based).
    pub fn max_level(&self) -> u32 {
        self.level_delays_ms.len() as u32
    }

    /// Delay of a 1-based level.
    pub fn level_delay_ms(&self, level: u32) -> Option<u64> {
        let i = usize::try_from(level).ok()?.checked_sub(1)?;
        self.level_delays_ms.get(i).copied()
    }

    pub fn timer_max_delay_ms(&self) -> i64 {
        (self.timer_max_delay_sec as i64).saturating_mul(1000)
    }
}

/// Why a `messageDelayLevel` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelsError {
    #[error("delay level {0:?} is not <number><s|m|h|d>")]
    BadLevel(String),
    #[error("messageDelayLevel needs 1 to {MAX_DELAY_LEVELS} levels, got {0}")]
    Count(usize),
}

/// Parses Java's `messageDelayLevel` ("1s 5s 10s 30s 1m ... 2h"; units s, m, h, d) into
/// milliseconds per level.
pub fn parse_delay_levels(text: &str) -> Result<Vec<u64>, LevelsError> {
    let levels = text
        .split_whitespace()
        .map(|item| {
            let bad = || LevelsError::BadLevel(item.to_string());
            let (num, unit) = item.split_at(item.len().saturating_sub(1));
            let unit_ms: u64 = match unit {
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            let n: u64 = num.parse().map_err(|_| bad())?;
            n.checked_mul(unit_ms).ok_or_else(bad)
        })
        .collect::<Result<Vec<u64>, _>>()?;
    if levels.is_empty() || levels.len() > MAX_DELAY_LEVELS {
        return Err(LevelsError::Count(levels.len()));
    }
    Ok(levels)
}

/// Writes levels back in `messageDelayLevel`'s form, with the largest whole unit.
pub fn format_delay_levels(levels_ms: &[u64]) -> String {
    let one = |ms: u64| {
        for (unit, unit_ms) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
            if ms >= unit_ms && ms % unit_ms == 0 {
                return format!("{}{unit}", ms / unit_ms);
            }
        }
        format!("{}s", ms / 1000)
    };
    levels_ms
        .iter()
        .map(|&ms| one(ms))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_format_back_to_the_same_text() {
        let levels = parse_delay_levels(DEFAULT_DELAY_LEVELS).unwrap();
        assert_eq!(format_delay_levels(&levels), DEFAULT_DELAY_LEVELS);
    }

    #[test]
    fn default_levels_are_javas() {
        let c = ScheduleConfig::default();
        assert_eq!(c.max_level(), 18);
        assert_eq!(c.level_delay_ms(1), Some(1000));
        assert_eq!(c.level_delay_ms(3), Some(10_000));
        assert_eq!(c.level_delay_ms(5), Some(60_000));
        assert_eq!(c.level_delay_ms(18), Some(7_200_000));
        assert_eq!(c.level_delay_ms(0), None);
        assert_eq!(c.level_delay_ms(19), None);
    }

    #[test]
    fn bad_levels_are_refused() {
        assert_eq!(parse_delay_levels("1d 2s"), Ok(vec![86_400_000, 2000]));
        assert!(matches!(
            parse_delay_levels("1x"),
            Err(LevelsError::BadLevel(_))
        ));
        assert!(matches!(
            parse_delay_levels("s"),
            Err(LevelsError::BadLevel(_))
        ));
        assert!(matches!(parse_delay_levels(""), Err(LevelsError::Count(0))));
        assert!(matches!(
            parse_delay_levels("-1s"),
            Err(LevelsError::BadLevel(_))
        ));
    }
}
