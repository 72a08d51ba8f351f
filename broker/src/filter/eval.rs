//! Evaluation with Java's semantics (RocketMQ's `ComparisonExpression`, `LogicExpression`,
//! `UnaryExpression`, with `convertStringExpressions` on, as `SelectorParser.parse` sets it):
//!
//! * three-valued logic: a missing property is NULL, a test on NULL is unknown, AND/OR/NOT
//!   follow SQL, and only a TRUE result matches;
//! * message properties are strings; against a numeric literal a property is read with
//!   `Integer.valueOf` / `Long.valueOf` / `Double.valueOf` according to the literal's type, and
//!   two strings under `>`/`<` are both read as doubles;
//! * where Java throws (a non-numeric string read as a number, a boolean compared with a
//!   string), the whole evaluation is abandoned and the message does not match, exactly as the
//!   broker's `ExpressionMessageFilter` catches the exception and answers false;
//! * mixed types that Java cannot compare answer "less" (Java's `-1`).
//!
//! Evaluation borrows everything (literals from the expression, values from the properties)
//! and allocates nothing.

use std::cmp::Ordering;

use super::build::{CmpOp, Const, Expr, PropRef};
use super::syntax::TextOp;

/// A value during evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

/// Java threw: the message does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort;

/// Where an expression reads message properties from.
pub trait Properties {
    /// The property's value, `None` when the message does not carry it.
    fn get(&self, prop: &PropRef) -> Option<&str>;
}

impl<'a> Val<'a> {
    pub fn from_const(c: &'a Const) -> Val<'a> {
        match c {
            Const::Null => Val::Null,
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Long(l) => Val::Long(*l),
            Const::Double(d) => Val::Double(*d),
            Const::Str(s) => Val::Str(s),
        }
    }

    /// Java's `(Boolean)` cast of a test's result: anything else is a ClassCastException.
    fn as_bool(self) -> Result<Option<bool>, Abort> {
        match self {
            Val::Null => Ok(None),
            Val::Bool(b) => Ok(Some(b)),
            _ => Err(Abort),
        }
    }
}

fn of(b: Option<bool>) -> Val<'static> {
    b.map_or(Val::Null, Val::Bool)
}

impl Expr {
    /// Evaluates against `props`.
    pub fn eval<'a, P: Properties>(&'a self, props: &'a P) -> Result<Val<'a>, Abort> {
        Ok(match self {
            Expr::Const(c) => Val::from_const(c),
            Expr::Prop(name) => props.get(name).map_or(Val::Null, Val::Str),
            Expr::Negate(inner) => match inner.eval(props)? {
                Val::Int(i) => Val::Int(i.wrapping_neg()),
                Val::Long(l) => Val::Long(l.wrapping_neg()),
                Val::Double(d) => Val::Double(-d),
                _ => Val::Null,
            },
            // A property value is a string, never a Boolean.
            Expr::BoolCast(name) => of(props.get(name).map(|_| false)),
            Expr::Not(inner) => of(inner.eval(props)?.as_bool()?.map(|b| !b)),
            Expr::And(l, r) => {
                let lv = l.eval(props)?.as_bool()?;
                if lv == Some(false) {
                    return Ok(Val::Bool(false));
                }
                let rv = r.eval(props)?.as_bool()?;
                if rv == Some(false) {
                    return Ok(Val::Bool(false));
                }
                of(lv.and(rv))
            }
            Expr::Or(l, r) => {
                let lv = l.eval(props)?.as_bool()?;
                if lv == Some(true) {
                    return Ok(Val::Bool(true));
                }
                let rv = r.eval(props)?.as_bool()?;
                if rv == Some(true) {
                    return Ok(Val::Bool(true));
                }
                of(lv.and(rv))
            }
            Expr::Eq(l, r) => equal(l.eval(props)?, r.eval(props)?)?,
            Expr::Cmp(op, l, r) => ordering(*op, l, r, props)?,
            Expr::In {
                prop,
                list,
                negated,
            } => of(props
                .get(prop)
                .map(|v| list.binary_search_by(|e| (**e).cmp(v)).is_ok() ^ negated)),
            Expr::Text {
                op,
                value,
                pattern,
                negated,
            } => text(*op, value.eval(props)?, pattern, *negated),
        })
    }
}

/// `doCreateEqual`: NULL = NULL is true (that is IS NULL), a NULL left side is unknown, a NULL
/// right side is false; otherwise compare.
fn equal<'a>(lv: Val<'a>, rv: Val<'a>) -> Result<Val<'a>, Abort> {
    Ok(match (lv, rv) {
        (Val::Null, Val::Null) => Val::Bool(true),
        (Val::Null, _) => Val::Null,
        (_, Val::Null) => Val::Bool(false),
        _ => Val::Bool(java_compare(lv, rv)? == Ordering::Equal),
    })
}

fn ordering<'a, P: Properties>(
    op: CmpOp,
    l: &'a Expr,
    r: &'a Expr,
    props: &'a P,
) -> Result<Val<'a>, Abort> {
    let lv = l.eval(props)?;
    if lv == Val::Null {
        return Ok(Val::Null);
    }
    let rv = r.eval(props)?;
    if rv == Val::Null {
        return Ok(Val::Null);
    }
    let order = match (lv, rv) {
        (Val::Str(a), Val::Str(b)) => java_double_cmp(parse_double(a)?, parse_double(b)?),
        _ => java_compare(lv, rv)?,
    };
    Ok(Val::Bool(match op {
        CmpOp::Gt => order == Ordering::Greater,
        CmpOp::Ge => order != Ordering::Less,
        CmpOp::Lt => order == Ordering::Less,
        CmpOp::Le => order != Ordering::Greater,
    }))
}

/// CONTAINS / STARTSWITH / ENDSWITH: false (not unknown) for an empty pattern, a missing
/// property or a non-string, in both the plain and the NOT form.
fn text(op: TextOp, value: Val<'_>, pattern: &str, negated: bool) -> Val<'static> {
    let Val::Str(s) = value else {
        return Val::Bool(false);
    };
    if pattern.is_empty() {
        return Val::Bool(false);
    }
    let found = match op {
        TextOp::Contains => s.contains(pattern),
        TextOp::StartsWith => s.starts_with(pattern),
        TextOp::EndsWith => s.ends_with(pattern),
    };
    Val::Bool(found ^ negated)
}

/// Java's `__compare` with string conversion on. Neither side is NULL.
pub fn java_compare(lv: Val<'_>, rv: Val<'_>) -> Result<Ordering, Abort> {
    use Val::{Bool, Double, Int, Long, Str};
    Ok(match (lv, rv) {
        (Bool(a), Bool(b)) => a.cmp(&b),
        (Int(a), Int(b)) => a.cmp(&b),
        (Long(a), Long(b)) => a.cmp(&b),
        (Double(a), Double(b)) => java_double_cmp(a, b),
        (Str(a), Str(b)) => java_string_cmp(a, b),
        (Int(a), Long(b)) => i64::from(a).cmp(&b),
        (Long(a), Int(b)) => a.cmp(&i64::from(b)),
        (Int(a), Double(b)) => java_double_cmp(f64::from(a), b),
        (Long(a), Double(b)) => java_double_cmp(a as f64, b),
        (Double(a), Int(b)) => java_double_cmp(a, f64::from(b)),
        (Double(a), Long(b)) => java_double_cmp(a, b as f64),
        (Int(a), Str(b)) => a.cmp(&b.parse::<i32>().map_err(|_| Abort)?),
        (Long(a), Str(b)) => a.cmp(&b.parse::<i64>().map_err(|_| Abort)?),
        (Double(a), Str(b)) => java_double_cmp(a, parse_double(b)?),
        (Str(a), Int(b)) => a.parse::<i32>().map_err(|_| Abort)?.cmp(&b),
        (Str(a), Long(b)) => a.parse::<i64>().map_err(|_| Abort)?.cmp(&b),
        (Str(a), Double(b)) => java_double_cmp(parse_double(a)?, b),
        (Str(a), Bool(b)) => a.eq_ignore_ascii_case("true").cmp(&b),
        // Java converts the wrong side here and fails with a ClassCastException.
        (Bool(_), Str(_)) => return Err(Abort),
        (Val::Null, _) | (_, Val::Null) => return Err(Abort),
        // A boolean against a number: Java answers -1.
        _ => Ordering::Less,
    })
}

/// `Double.compare`: a total order with -0.0 < 0.0 and NaN above everything.
pub fn java_double_cmp(a: f64, b: f64) -> Ordering {
    if a < b {
        return Ordering::Less;
    }
    if a > b {
        return Ordering::Greater;
    }
    let bits = |x: f64| {
        if x.is_nan() {
            0x7ff8_0000_0000_0000_i64
        } else {
            x.to_bits() as i64
        }
    };
    bits(a).cmp(&bits(b))
}

/// `String.compareTo`: UTF-16 code units.
fn java_string_cmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `Double.valueOf(String)`: surrounding control/space characters ignored, an optional sign,
/// `NaN`, `Infinity`, or a decimal number with an optional `f`/`F`/`d`/`D` suffix.
/// (Hexadecimal floating literals, which Java also reads, are refused.)
pub fn parse_double(s: &str) -> Result<f64, Abort> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let magnitude = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let digits = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            let plain = digits
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if !plain {
                return Err(Abort);
            }
            digits.parse::<f64>().map_err(|_| Abort)?
        }
    };
    Ok(if negative { -magnitude } else { magnitude })
}
