//! The send-side decision (pure): is a message delayed by a level, held as a timer, or stored
//! at once; and the properties of the held record and of the delivered one.
//!
//! Java's rules (`HookUtils.handleScheduleMessage`): a `DELAY` level above 0 wins and clears the
//! timer properties; a level above the maximum is clamped; a timer (`TIMER_DELAY_SEC`, else
//! `TIMER_DELAY_MS`, else `TIMER_DELIVER_MS`) due in the past is stored at once; one due past
//! `timerMaxDelaySec` is refused. Java rounds a timer's due time *down* to `timerPrecisionMs`
//! (1 s), delivering up to a second early; ringmq keeps the exact millisecond, never early.

use ringmq_proto::message::properties::{push_property, PropertiesIter};
use ringmq_proto::message::{find_property, property};

use ringmq_proto::code::ResponseCode;

use super::{ScheduleConfig, SCHEDULE_TOPIC, TIMER_TOPIC};

/// Where a message goes on send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Stored in its own topic now.
    Immediate,
    /// Held in `SCHEDULE_TOPIC_XXXX` queue `level - 1` until `due_ms`.
    Delay { level: u32, due_ms: i64 },
    /// Held in `rmq_sys_wheel_timer` queue 0 until `due_ms`.
    Timer { due_ms: i64 },
}

impl Placement {
    /// The system topic and queue holding the message, if it is held.
    pub fn holding_queue(&self) -> Option<(&'static str, i32)> {
        match *self {
            Placement::Immediate => None,
            Placement::Delay { level, .. } => Some((SCHEDULE_TOPIC, level as i32 - 1)),
            Placement::Timer { .. } => Some((TIMER_TOPIC, 0)),
        }
    }

    /// The due time of a held message.
    pub fn due_ms(&self) -> Option<i64> {
        match *self {
            Placement::Immediate => None,
            Placement::Delay { due_ms, .. } | Placement::Timer { due_ms } => Some(due_ms),
        }
    }
}

/// Why a send's schedule properties are refused (the answer Java gives).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `DELAY` is not an integer: Java's `Integer.parseInt` throws and the send fails with
    /// SYSTEM_ERROR and the exception text.
    #[error("java.lang.NumberFormatException: For input string: \"{0}\"")]
    BadDelayLevel(String),
    /// A timer value that is not a number, or a due time past `timerMaxDelaySec`
    /// (WHEEL_TIMER_MSG_ILLEGAL → MESSAGE_ILLEGAL).
    #[error("timer message illegal, the delay time should not be bigger than the max delay {max_delay_ms}ms; or if set del msg, the delay time should be bigger than the current time")]
    TimerIllegal { max_delay_ms: i64 },
    /// A timer message while `timerWheelEnable=false` (WHEEL_TIMER_NOT_ENABLE → SYSTEM_ERROR).
    #[error("accurate timer message is not enabled, timerWheelEnable is false")]
    TimerNotEnabled,
    /// A batch whose own properties carry `DELAY` > 0: Java's store refuses it
    /// (`CommitLog.asyncPutMessages`: MESSAGE_ILLEGAL, answered with the generic illegal-message
    /// remark, which names the broker's `maxMessageSize`; the send path writes it).
    #[error("a batch cannot carry a delay level")]
    DelayedBatch,
}

impl PlanError {
    /// The response code Java answers with.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            PlanError::TimerIllegal { .. } | PlanError::DelayedBatch => {
                ResponseCode::MessageIllegal
            }
            PlanError::BadDelayLevel(_) | PlanError::TimerNotEnabled => ResponseCode::SystemError,
        }
    }
}

/// A message the send path stores in a system topic instead of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub topic: &'static str,
    pub queue_id: i32,
    /// The held record's properties ([`held_properties`]).
    pub properties: Vec<u8>,
}

/// The send path's one call: `None` to store the message as it is, or where and with which
/// properties to hold it. `client` are the properties the client sent, `stored` the ones the
/// broker is about to store (with UNIQ_KEY etc.).
pub fn hold(
    config: &ScheduleConfig,
    client: &[u8],
    stored: &[u8],
    real_topic: &str,
    real_queue_id: i32,
    now_ms: i64,
) -> Result<Option<Held>, PlanError> {
    let placement = plan(client, now_ms, config)?;
    let Some((topic, queue_id)) = placement.holding_queue() else {
        return Ok(None);
    };
    Ok(Some(Held {
        topic,
        queue_id,
        properties: held_properties(stored, &placement, real_topic, real_queue_id),
    }))
}

/// The batch send's one call (Java 5.x: the schedule hook runs on the batch as one message, with
/// the *request header's* properties; the items' own properties are never looked at):
/// * `DELAY` > 0 in the header: refused ([`PlanError::DelayedBatch`]), as Java's store does;
/// * a timer in the header: every item is held as a timer with that one due time (Java stores
///   the whole batch in `rmq_sys_wheel_timer` and its timer store delivers each item);
/// * otherwise, or a timer already due: `None`, the items are stored as they are, even when an
///   item's own properties carry `DELAY` or a timer (Java ignores them in a batch).
///
/// `items` are the items' properties as stored (with UNIQ_KEY etc.).
pub fn hold_batch<'a>(
    config: &ScheduleConfig,
    header: &[u8],
    items: impl Iterator<Item = &'a [u8]>,
    real_topic: &str,
    real_queue_id: i32,
    now_ms: i64,
) -> Result<Option<Vec<Held>>, PlanError> {
    let placement = plan(header, now_ms, config)?;
    match placement {
        Placement::Immediate => Ok(None),
        Placement::Delay { .. } => Err(PlanError::DelayedBatch),
        Placement::Timer { .. } => Ok(Some(
            items
                .map(|stored| Held {
                    topic: TIMER_TOPIC,
                    queue_id: 0,
                    properties: held_properties(stored, &placement, real_topic, real_queue_id),
                })
                .collect(),
        )),
    }
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// The properties [`plan`] reads, found in one pass over the properties string: every send is
/// planned, a plain message has none of them, and five scans of its properties (one per name)
/// were a visible share of a send's CPU. The last occurrence wins, as with `find_property`.
#[derive(Default)]
struct ScheduleProperties<'a> {
    delay: Option<&'a [u8]>,
    timer_out_ms: Option<&'a [u8]>,
    timer_delay_sec: Option<&'a [u8]>,
    timer_delay_ms: Option<&'a [u8]>,
    timer_deliver_ms: Option<&'a [u8]>,
}

impl<'a> ScheduleProperties<'a> {
    fn find(properties: &'a [u8]) -> Self {
        let mut found = ScheduleProperties::default();
        for (name, value) in PropertiesIter::new(properties) {
            let slot = match name {
                n if n == property::DELAY.as_bytes() => &mut found.delay,
                n if n == property::TIMER_OUT_MS.as_bytes() => &mut found.timer_out_ms,
                n if n == property::TIMER_DELAY_SEC.as_bytes() => &mut found.timer_delay_sec,
                n if n == property::TIMER_DELAY_MS.as_bytes() => &mut found.timer_delay_ms,
                n if n == property::TIMER_DELIVER_MS.as_bytes() => &mut found.timer_deliver_ms,
                _ => continue,
            };
            *slot = Some(value);
        }
        found
    }
}

/// Decides where a message with these (client) properties goes, at `now_ms`.
pub fn plan(
    properties: &[u8],
    now_ms: i64,
    config: &ScheduleConfig,
) -> Result<Placement, PlanError> {
    let found = ScheduleProperties::find(properties);
    if let Some(raw) = found.delay {
        let level: i64 = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .ok_or_else(|| PlanError::BadDelayLevel(text(raw)))?
            .into();
        if level > 0 {
            let level = level.min(config.max_level() as i64) as u32;
            let delay = config.level_delay_ms(level).unwrap_or(0);
            return Ok(Placement::Delay {
                level,
                due_ms: now_ms.saturating_add(delay as i64),
            });
        }
    }
    plan_timer(&found, now_ms, config)
}

fn plan_timer(
    found: &ScheduleProperties<'_>,
    now_ms: i64,
    config: &ScheduleConfig,
) -> Result<Placement, PlanError> {
    // Java's double check: a record already converted (or delivered) is not a timer again.
    if found.timer_out_ms.is_some() {
        return Ok(Placement::Immediate);
    }
    let illegal = PlanError::TimerIllegal {
        max_delay_ms: config.timer_max_delay_ms(),
    };
    let number = |raw: &[u8]| -> Result<i64, PlanError> {
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or(illegal.clone())
    };
    let due_ms = if let Some(raw) = found.timer_delay_sec {
        now_ms.saturating_add(number(raw)?.saturating_mul(1000))
    } else if let Some(raw) = found.timer_delay_ms {
        now_ms.saturating_add(number(raw)?)
    } else if let Some(raw) = found.timer_deliver_ms {
        number(raw)?
    } else {
        return Ok(Placement::Immediate);
    };
    if !config.timer_enabled {
        return Err(PlanError::TimerNotEnabled);
    }
    if due_ms <= now_ms {
        return Ok(Placement::Immediate);
    }
    if due_ms - now_ms > config.timer_max_delay_ms() {
        return Err(illegal);
    }
    Ok(Placement::Timer { due_ms })
}

/// Properties of the held record: the stored properties (already with UNIQ_KEY etc.) with
/// DELAY set to the clamped level (delay) or the timer properties kept (timer), plus REAL_TOPIC,
/// REAL_QID and the due time in TIMER_OUT_MS (the consume queue's tag slot reads it).
pub fn held_properties(
    stored: &[u8],
    placement: &Placement,
    real_topic: &str,
    real_queue_id: i32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + real_topic.len() + 64);
    let drop_timer = matches!(placement, Placement::Delay { .. });
    for (k, v) in PropertiesIter::new(stored) {
        let timer_prop = k == property::TIMER_DELIVER_MS.as_bytes()
            || k == property::TIMER_DELAY_SEC.as_bytes()
            || k == property::TIMER_DELAY_MS.as_bytes();
        if k == property::DELAY.as_bytes()
            || k == property::REAL_TOPIC.as_bytes()
            || k == property::REAL_QID.as_bytes()
            || k == property::TIMER_OUT_MS.as_bytes()
            || (drop_timer && timer_prop)
        {
            continue;
        }
        push_property(&mut out, k, v);
    }
    if let Placement::Delay { level, .. } = placement {
        push_property(
            &mut out,
            property::DELAY.as_bytes(),
            level.to_string().as_bytes(),
        );
    }
    push_property(
        &mut out,
        property::REAL_TOPIC.as_bytes(),
        real_topic.as_bytes(),
    );
    push_property(
        &mut out,
        property::REAL_QID.as_bytes(),
        real_queue_id.to_string().as_bytes(),
    );
    let due = placement.due_ms().unwrap_or(0);
    push_property(
        &mut out,
        property::TIMER_OUT_MS.as_bytes(),
        due.to_string().as_bytes(),
    );
    out
}

/// What a delivery needs from a held record's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealQueue {
    pub topic: String,
    pub queue_id: i32,
}

/// REAL_TOPIC and REAL_QID of a held record; `None` if either is missing or garbled.
pub fn real_queue(held: &[u8]) -> Option<RealQueue> {
    let topic = std::str::from_utf8(find_property(held, property::REAL_TOPIC)?).ok()?;
    let queue_id = std::str::from_utf8(find_property(held, property::REAL_QID)?)
        .ok()?
        .parse()
        .ok()?;
    Some(RealQueue {
        topic: topic.to_owned(),
        queue_id,
    })
}

/// Properties of the delivered message, written into `out`. Delay level: DELAY removed, the rest
/// kept (Java keeps REAL_TOPIC/REAL_QID; TIMER_OUT_MS stays as the due time, so consumers can
/// measure lateness). Timer: REAL_TOPIC/REAL_QID removed; TIMER_ENQUEUE_MS (when the timer was
/// stored), TIMER_DELIVER_MS (its due time) and TIMER_DEQUEUE_MS (now) set, as Java's timer
/// store does.
pub fn delivered_properties(held: &[u8], timer: Option<TimerStamps>, out: &mut Vec<u8>) {
    out.clear();
    for (k, v) in PropertiesIter::new(held) {
        let skip = k == property::DELAY.as_bytes()
            || (timer.is_some()
                && (k == property::REAL_TOPIC.as_bytes()
                    || k == property::REAL_QID.as_bytes()
                    || k == property::TIMER_ENQUEUE_MS.as_bytes()
                    || k == property::TIMER_DELIVER_MS.as_bytes()
                    || k == property::TIMER_DEQUEUE_MS.as_bytes()));
        if !skip {
            push_property(out, k, v);
        }
    }
    if let Some(t) = timer {
        push_property(
            out,
            property::TIMER_ENQUEUE_MS.as_bytes(),
            t.enqueue_ms.to_string().as_bytes(),
        );
        push_property(
            out,
            property::TIMER_DELIVER_MS.as_bytes(),
            t.due_ms.to_string().as_bytes(),
        );
        push_property(
            out,
            property::TIMER_DEQUEUE_MS.as_bytes(),
            t.dequeue_ms.to_string().as_bytes(),
        );
    }
}

/// The times stamped on a delivered timer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerStamps {
    pub enqueue_ms: i64,
    pub due_ms: i64,
    pub dequeue_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_proto::message::properties::encode_properties;

    fn props(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_properties(pairs.iter().copied(), &mut out);
        out
    }

    fn config() -> ScheduleConfig {
        ScheduleConfig::default()
    }

    #[test]
    fn delay_levels_clamp_and_skip() {
        let c = config();
        assert_eq!(
            plan(&props(&[("DELAY", "3")]), 1000, &c),
            Ok(Placement::Delay {
                level: 3,
                due_ms: 11_000
            })
        );
        assert_eq!(
            plan(&props(&[("DELAY", "99")]), 0, &c),
            Ok(Placement::Delay {
                level: 18,
                due_ms: 2 * 3600 * 1000
            })
        );
        assert_eq!(
            plan(&props(&[("DELAY", "0")]), 0, &c),
            Ok(Placement::Immediate)
        );
        assert_eq!(
            plan(&props(&[("DELAY", "-1")]), 0, &c),
            Ok(Placement::Immediate)
        );
        assert_eq!(
            plan(&props(&[("DELAY", "abc")]), 0, &c),
            Err(PlanError::BadDelayLevel("abc".into()))
        );
        assert_eq!(
            plan(&props(&[("DELAY", "99999999999")]), 0, &c),
            Err(PlanError::BadDelayLevel("99999999999".into()))
        );
    }

    #[test]
    fn delay_level_wins_over_timer() {
        let p = props(&[("TIMER_DELAY_SEC", "5"), ("DELAY", "1")]);
        assert_eq!(
            plan(&p, 0, &config()),
            Ok(Placement::Delay {
                level: 1,
                due_ms: 1000
            })
        );
        let held = held_properties(
            &p,
            &Placement::Delay {
                level: 1,
                due_ms: 1000,
            },
            "T",
            2,
        );
        assert!(find_property(&held, "TIMER_DELAY_SEC").is_none());
    }

    #[test]
    fn timers_in_order_of_precedence() {
        let c = config();
        let t = |pairs: &[(&str, &str)]| plan(&props(pairs), 10_000, &c);
        assert_eq!(
            t(&[("TIMER_DELAY_SEC", "2")]),
            Ok(Placement::Timer { due_ms: 12_000 })
        );
        assert_eq!(
            t(&[("TIMER_DELAY_MS", "250")]),
            Ok(Placement::Timer { due_ms: 10_250 })
        );
        assert_eq!(
            t(&[("TIMER_DELIVER_MS", "10001")]),
            Ok(Placement::Timer { due_ms: 10_001 })
        );
        assert_eq!(
            t(&[("TIMER_DELAY_SEC", "1"), ("TIMER_DELIVER_MS", "99999")]),
            Ok(Placement::Timer { due_ms: 11_000 })
        );
        assert_eq!(
            t(&[("TIMER_DELIVER_MS", "10000")]),
            Ok(Placement::Immediate)
        );
        assert_eq!(t(&[("TIMER_DELIVER_MS", "5")]), Ok(Placement::Immediate));
        assert_eq!(t(&[]), Ok(Placement::Immediate));
        let illegal = Err(PlanError::TimerIllegal {
            max_delay_ms: 3 * 86_400_000,
        });
        assert_eq!(t(&[("TIMER_DELAY_SEC", "x")]), illegal);
        assert_eq!(t(&[("TIMER_DELAY_SEC", "259201")]), illegal);
        assert_eq!(
            t(&[("TIMER_DELAY_SEC", "259200")]),
            Ok(Placement::Timer {
                due_ms: 10_000 + 259_200_000
            })
        );
        assert_eq!(t(&[("TIMER_DELAY_MS", "9223372036854775807")]), illegal);
        assert_eq!(
            t(&[("TIMER_OUT_MS", "1"), ("TIMER_DELAY_SEC", "2")]),
            Ok(Placement::Immediate)
        );
    }

    #[test]
    fn batches_follow_their_header_not_their_items() {
        let c = config();
        let items = [
            props(&[("UNIQ_KEY", "A"), ("DELAY", "3")]),
            props(&[("UNIQ_KEY", "B"), ("TIMER_DELAY_SEC", "9")]),
        ];
        let batch = |header: &[(&str, &str)]| {
            hold_batch(
                &c,
                &props(header),
                items.iter().map(Vec::as_slice),
                "T",
                2,
                1000,
            )
        };
        // The items' own DELAY and timer are not looked at: stored at once.
        assert_eq!(batch(&[("WAIT", "true")]), Ok(None));
        assert_eq!(batch(&[("DELAY", "0")]), Ok(None));
        assert_eq!(batch(&[("DELAY", "2")]), Err(PlanError::DelayedBatch));
        assert_eq!(
            PlanError::DelayedBatch.response_code(),
            ResponseCode::MessageIllegal
        );
        assert_eq!(
            batch(&[("DELAY", "x")]),
            Err(PlanError::BadDelayLevel("x".into()))
        );
        assert_eq!(batch(&[("TIMER_DELIVER_MS", "999")]), Ok(None));
        assert!(matches!(
            batch(&[("TIMER_DELAY_SEC", "999999999")]),
            Err(PlanError::TimerIllegal { .. })
        ));
        let held = batch(&[("TIMER_DELAY_MS", "500")]).unwrap().unwrap();
        assert_eq!(held.len(), 2);
        for (h, key) in held.iter().zip(["A", "B"]) {
            assert_eq!((h.topic, h.queue_id), (TIMER_TOPIC, 0));
            assert_eq!(
                find_property(&h.properties, "TIMER_OUT_MS"),
                Some(&b"1500"[..])
            );
            assert_eq!(
                find_property(&h.properties, "UNIQ_KEY"),
                Some(key.as_bytes())
            );
            assert_eq!(find_property(&h.properties, "REAL_TOPIC"), Some(&b"T"[..]));
            assert_eq!(find_property(&h.properties, "REAL_QID"), Some(&b"2"[..]));
            assert!(find_property(&h.properties, "DELAY").is_none());
        }
    }

    #[test]
    fn held_and_delivered_properties_round_trip() {
        let stored = props(&[("TAGS", "a"), ("UNIQ_KEY", "U"), ("DELAY", "4")]);
        let placement = Placement::Delay {
            level: 4,
            due_ms: 77,
        };
        let held = held_properties(&stored, &placement, "Topic", 5);
        assert_eq!(
            real_queue(&held),
            Some(RealQueue {
                topic: "Topic".into(),
                queue_id: 5
            })
        );
        assert_eq!(find_property(&held, "TIMER_OUT_MS"), Some(&b"77"[..]));
        assert_eq!(find_property(&held, "DELAY"), Some(&b"4"[..]));
        let mut out = Vec::new();
        delivered_properties(&held, None, &mut out);
        assert!(find_property(&out, "DELAY").is_none());
        assert_eq!(find_property(&out, "TAGS"), Some(&b"a"[..]));
        assert_eq!(find_property(&out, "UNIQ_KEY"), Some(&b"U"[..]));
        assert_eq!(find_property(&out, "REAL_TOPIC"), Some(&b"Topic"[..]));

        let timer = Placement::Timer { due_ms: 500 };
        let held = held_properties(&props(&[("TIMER_DELAY_MS", "400")]), &timer, "T", 0);
        let stamps = TimerStamps {
            enqueue_ms: 100,
            due_ms: 500,
            dequeue_ms: 501,
        };
        delivered_properties(&held, Some(stamps), &mut out);
        assert!(find_property(&out, "REAL_TOPIC").is_none());
        assert_eq!(find_property(&out, "TIMER_ENQUEUE_MS"), Some(&b"100"[..]));
        assert_eq!(find_property(&out, "TIMER_DELIVER_MS"), Some(&b"500"[..]));
        assert_eq!(find_property(&out, "TIMER_DEQUEUE_MS"), Some(&b"501"[..]));
    }
}
