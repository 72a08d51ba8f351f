//! SQL92 property filters (RocketMQ's `ExpressionType.SQL92`): a pure parser, checker and
//! evaluator, plus a per-shard cache of compiled expressions. No I/O.
//!
//! * [`syntax`] — the grammar, parsed with `nom` into a syntax tree;
//! * [`build`] — Java's parse-time checks, giving an [`build::Expr`];
//! * [`eval`] — Java's evaluation semantics over a message's properties.
//!
//! A consumer's expression is compiled once per (group, topic, subVersion) and kept in a
//! [`FilterCache`]; pulls then evaluate it against each candidate record's properties string
//! in place (no map is built, nothing is allocated per message). Compiling numbers the distinct
//! property names the expression reads; evaluation first fills all of them in one scan of the
//! properties string ([`Resolved`]), so an expression reading several properties costs one
//! pass over the string, not one per reference.

pub mod build;
pub mod eval;
pub mod syntax;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use ringmq_proto::message::properties::{NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
use ringmq_proto::message::{find_property, DecodedRecord};

pub use eval::Properties;

/// Longest expression accepted (Java has no limit but the frame's; this keeps a hostile
/// subscription from costing more than a bounded parse).
pub const MAX_EXPRESSION_BYTES: usize = 64 * 1024;
/// Distinct property names an expression may read and still be evaluated in one scan of the
/// properties string (the slots live on the stack); an expression reading more falls back to
/// one scan per reference, which is correct, only slower.
pub const MAX_SLOTS: usize = 16;
/// Compiled expressions a shard keeps; past it the cache starts empty again (entries are
/// compiled again on their next pull).
pub const MAX_CACHED_FILTERS: usize = 4096;

/// Java's remark when a non-TAG subscription reaches a broker without `enablePropertyFilter`.
pub fn unsupported_remark(expression_type: &str) -> String {
    format!("The broker does not support consumer to filter message by {expression_type}")
}

/// `ExpressionType.SQL92` (Java compares names case-sensitively; any case is accepted here).
pub fn is_sql92(expression_type: &str) -> bool {
    expression_type.eq_ignore_ascii_case("SQL92")
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Java wraps every parse or check failure as `MQFilterException("Invalid MessageSelector. ")`;
    /// the reason is appended here.
    #[error("Invalid MessageSelector. {0}")]
    Invalid(String),
}

/// A compiled SQL92 selector.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    expr: build::Expr,
    /// The distinct property names `expr` reads; a reference's slot indexes this.
    names: Box<[Box<str>]>,
    /// Bit `min(len, 63)` set for the byte length of each name: most properties of a message
    /// are not read by the expression, and their names are passed over on length alone.
    name_lengths: u64,
    source: Box<str>,
}

impl SqlFilter {
    /// Parses and checks `expression` as Java's `SqlFilter.compile` does.
    pub fn compile(expression: &str) -> Result<SqlFilter, FilterError> {
        if expression.len() > MAX_EXPRESSION_BYTES {
            return Err(FilterError::Invalid(format!(
                "expression longer than {MAX_EXPRESSION_BYTES} bytes"
            )));
        }
        let tree = syntax::parse(expression).map_err(FilterError::Invalid)?;
        let mut expr = build::build_selector(&tree).map_err(FilterError::Invalid)?;
        let mut names = Vec::new();
        build::assign_slots(&mut expr, &mut names);
        Ok(SqlFilter {
            expr,
            name_lengths: names.iter().fold(0, |bits, n| bits | length_bit(n.len())),
            names: names.into_boxed_slice(),
            source: expression.into(),
        })
    }

    pub fn expression(&self) -> &str {
        &self.source
    }

    /// True only when the expression evaluates to TRUE (unknown and errors do not match).
    pub fn matches<P: Properties>(&self, props: &P) -> bool {
        matches!(self.expr.eval(props), Ok(eval::Val::Bool(true)))
    }

    /// The distinct property names the expression reads.
    pub fn property_names(&self) -> &[Box<str>] {
        &self.names
    }

    /// Evaluates against a stored record's properties string (`name 0x01 value 0x02 …`): one
    /// scan fills every referenced property, then the expression reads the slots.
    pub fn matches_properties(&self, raw: &[u8]) -> bool {
        match &*self.names {
            // One name, however often referenced: one `find_property` scan fills its slot.
            [name] => self.matches(&Resolved::one(find_property(raw, name))),
            names if names.len() <= MAX_SLOTS => {
                self.matches(&Resolved::scan(raw, names, self.name_lengths))
            }
            _ => self.matches(&RawProperties(raw)),
        }
    }
}

/// Pulls test each candidate record's properties in place.
impl crate::store::RecordFilter for SqlFilter {
    fn accepts(&self, record: &[u8]) -> bool {
        // A record the store returned always decodes; if one did not, let the client see it.
        DecodedRecord::decode(record).map_or(true, |d| self.matches_properties(d.record.properties))
    }
}

/// The values of an expression's referenced properties, filled by one scan of a properties
/// string: slot `i` holds the value of `names[i]` (the last one when repeated, as Java's map),
/// borrowed from the string. Lives on the stack; building it allocates nothing.
pub struct Resolved<'a> {
    values: [Option<&'a [u8]>; MAX_SLOTS],
}

impl<'a> Resolved<'a> {
    /// The slots of an expression reading one property name, whose value is `value`.
    pub fn one(value: Option<&'a [u8]>) -> Resolved<'a> {
        let mut values = [None; MAX_SLOTS];
        values[0] = value;
        Resolved { values }
    }

    /// Scans `raw` once. `names` (at most [`MAX_SLOTS`], distinct) are the expression's and
    /// `name_lengths` their [`length_bit`]s. Items are split as `PropertiesIter` (Java's
    /// `string2messageProperties`) splits them, each in one pass that finds its first 0x01
    /// and its end together.
    pub fn scan(raw: &'a [u8], names: &[Box<str>], name_lengths: u64) -> Resolved<'a> {
        debug_assert!(names.len() <= MAX_SLOTS);
        let mut values = [None; MAX_SLOTS];
        let mut start = 0;
        while start < raw.len() {
            let (sep, end) = item_bounds(raw, start);
            let item = start;
            start = end + 1;
            // Java skips items under 3 bytes and those whose name or value is empty.
            let Some(sep) = sep.filter(|&p| end - item >= 3 && p > item && p < end - 1) else {
                continue;
            };
            let name = &raw[item..sep];
            if name_lengths & length_bit(name.len()) == 0 {
                continue;
            }
            // Names are distinct: at most one slot takes the value.
            if let Some(i) = names.iter().position(|n| n.as_bytes() == name) {
                values[i] = Some(&raw[sep + 1..end]);
            }
        }
        Resolved { values }
    }
}

/// The first 0x01 of the item starting at `start` (if any before its end) and its end: the
/// next 0x02, or the end of `raw`.
fn item_bounds(raw: &[u8], start: usize) -> (Option<usize>, usize) {
    let mut sep = None;
    let mut at = start;
    while at < raw.len() {
        match raw[at] {
            PROPERTY_SEPARATOR => break,
            NAME_VALUE_SEPARATOR if sep.is_none() => sep = Some(at),
            _ => {}
        }
        at += 1;
    }
    (sep, at)
}

/// The bit standing for a name of `len` bytes (lengths past 62 share bit 63).
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl Properties for Resolved<'_> {
    fn get(&self, prop: &build::PropRef) -> Option<&str> {
        let value = (*self.values.get(usize::from(prop.slot))?)?;
        Some(std::str::from_utf8(value).unwrap_or(NOT_UTF8))
    }
}

/// A record's properties string, read in place: one scan per property reference (the path
/// for expressions reading more than [`MAX_SLOTS`] properties; benchmarks compare it).
pub struct RawProperties<'a>(pub &'a [u8]);

/// What a value that is not UTF-8 reads as (Java decodes it with replacement characters; this
/// keeps the per-message path free of allocation, and such a value equals no literal anyway).
const NOT_UTF8: &str = "\u{FFFD}";

impl Properties for RawProperties<'_> {
    fn get(&self, prop: &build::PropRef) -> Option<&str> {
        find_property(self.0, &prop.name).map(|v| std::str::from_utf8(v).unwrap_or(NOT_UTF8))
    }
}

impl<S: std::hash::BuildHasher> Properties for HashMap<String, String, S> {
    fn get(&self, prop: &build::PropRef) -> Option<&str> {
        HashMap::get(self, &*prop.name).map(String::as_str)
    }
}

/// One cached compilation: the version and text it was compiled from, and the outcome (a
/// refused expression is remembered too, so it is not parsed again on every pull).
struct Cached {
    sub_version: i64,
    expression: Box<str>,
    outcome: Result<Rc<SqlFilter>, FilterError>,
}

/// Compiled expressions by group then topic, recompiled when the subVersion or text changes.
/// Shard-local (`Rc`): each shard compiles what its own pulls need. A hit allocates nothing.
#[derive(Default)]
pub struct FilterCache {
    groups: HashMap<Box<str>, HashMap<Box<str>, Cached>>,
    len: usize,
}

impl FilterCache {
    /// The compiled filter of `group` on `topic` for this subscription version.
    pub fn get_or_compile(
        &mut self,
        group: &str,
        topic: &str,
        sub_version: i64,
        expression: &str,
    ) -> Result<Rc<SqlFilter>, FilterError> {
        if let Some(hit) = self.groups.get(group).and_then(|topics| topics.get(topic)) {
            if hit.sub_version == sub_version && *hit.expression == *expression {
                return hit.outcome.clone();
            }
        }
        if self.len >= MAX_CACHED_FILTERS {
            // Full: start over rather than track recency; live consumers recompile on their
            // next pull (microseconds each).
            self.groups.clear();
            self.len = 0;
        }
        let outcome = SqlFilter::compile(expression).map(Rc::new);
        let cached = Cached {
            sub_version,
            expression: expression.into(),
            outcome: outcome.clone(),
        };
        let topics = self.groups.entry(group.into()).or_default();
        if topics.insert(topic.into(), cached).is_none() {
            self.len += 1;
        }
        outcome
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
