//! From syntax to an evaluable expression, with the checks Java's `ComparisonExpression`
//! factories make while parsing (so what Java refuses at subscription time is refused here
//! too, with a remark that names the culprit):
//!
//! * `>`, `>=`, `<`, `<=` take numbers, properties and negations, never a string, boolean or
//!   NULL literal nor a boolean expression (`checkLessThanOperand`);
//! * `=` / `<>` never take the NULL literal (`checkEqualOperand`), and two literals compared
//!   must both be boolean when the left one is (`checkEqualOperandCompatability`);
//! * `BETWEEN` of two literals needs them non-null and in order;
//! * `IN` needs a property on its left;
//! * AND / OR / NOT need boolean operands; a bare property is read as a boolean (it never is
//!   one, since message properties are strings: such a test is false, or unknown if absent);
//! * integer literals are Java longs (`Integer` when they fit); floating literals are doubles,
//!   finite and not below `Double.MIN_VALUE` (so `0.0` is refused, as in Java).

use super::eval::{java_compare, Val};
use super::syntax::{BinOp, Syntax, TextOp};

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(Box<str>),
}

/// Ordering tests; operands are numeric (or strings read as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// Slot of a property the expression has not been resolved against yet.
pub const UNRESOLVED_SLOT: u16 = u16::MAX;

/// A property the expression reads: its name, and its slot in the table of distinct names the
/// expression references ([`assign_slots`]), so one scan of a message's properties string can
/// fill every value the evaluation may need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropRef {
    pub name: Box<str>,
    pub slot: u16,
}

impl PropRef {
    fn new(name: &str) -> PropRef {
        PropRef {
            name: name.into(),
            slot: UNRESOLVED_SLOT,
        }
    }
}

/// A checked expression, evaluated per message by [`super::eval`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Const),
    Prop(PropRef),
    Negate(Box<Expr>),
    /// A property used where a boolean is expected (Java's `createBooleanCast`).
    BoolCast(PropRef),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Equality with Java's null handling (also IS NULL, against `Const(Null)`).
    Eq(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `prop [NOT] IN (…)`; the list is sorted for a binary search.
    In {
        prop: PropRef,
        list: Box<[Box<str>]>,
        negated: bool,
    },
    Text {
        op: TextOp,
        value: Box<Expr>,
        pattern: Box<str>,
        negated: bool,
    },
}

impl Expr {
    /// Java's `ConstantExpression`.
    fn is_constant(&self) -> bool {
        matches!(self, Expr::Const(_))
    }

    /// Java's `BooleanExpression`: the TRUE/FALSE/NULL literals and every test.
    fn is_boolean(&self) -> bool {
        match self {
            Expr::Const(c) => matches!(c, Const::Bool(_) | Const::Null),
            Expr::Prop(_) | Expr::Negate(_) => false,
            _ => true,
        }
    }
}

/// Builds and checks a whole selector, which must be a boolean test (Java's `JmsSelector`).
pub fn build_selector(syntax: &Syntax) -> Result<Expr, String> {
    as_boolean(build(syntax)?)
}

/// Gives every property reference in `expr` the slot of its name in `names`, appending names
/// not seen yet; `names` ends up holding each distinct referenced name once, in first-use order.
pub fn assign_slots(expr: &mut Expr, names: &mut Vec<Box<str>>) {
    match expr {
        Expr::Const(_) => {}
        Expr::Prop(prop) | Expr::BoolCast(prop) | Expr::In { prop, .. } => slot_of(prop, names),
        Expr::Negate(inner) | Expr::Not(inner) | Expr::Text { value: inner, .. } => {
            assign_slots(inner, names)
        }
        Expr::And(l, r) | Expr::Or(l, r) | Expr::Eq(l, r) | Expr::Cmp(_, l, r) => {
            assign_slots(l, names);
            assign_slots(r, names);
        }
    }
}

fn slot_of(prop: &mut PropRef, names: &mut Vec<Box<str>>) {
    let index = match names.iter().position(|n| *n == prop.name) {
        Some(i) => i,
        None => {
            names.push(prop.name.clone());
            names.len() - 1
        }
    };
    // Past u16 (a 64 KiB expression cannot get there) the reference stays unresolved.
    prop.slot = u16::try_from(index).unwrap_or(UNRESOLVED_SLOT);
}

/// Builds and checks `syntax`; the error is the reason, for the remark.
fn build(syntax: &Syntax) -> Result<Expr, String> {
    Ok(match syntax {
        Syntax::Str(s) => Expr::Const(Const::Str(s.as_str().into())),
        Syntax::Decimal(text) => Expr::Const(decimal(text)?),
        Syntax::Float(text) => Expr::Const(float(text)?),
        Syntax::True => Expr::Const(Const::Bool(true)),
        Syntax::False => Expr::Const(Const::Bool(false)),
        Syntax::Null => Expr::Const(Const::Null),
        Syntax::Ident(name) => Expr::Prop(PropRef::new(name)),
        Syntax::Plus(inner) => build(inner)?,
        Syntax::Negate(inner) => Expr::Negate(Box::new(build(inner)?)),
        Syntax::Not(inner) => Expr::Not(Box::new(as_boolean(build(inner)?)?)),
        Syntax::Binary(op, left, right) => binary(*op, build(left)?, build(right)?)?,
        Syntax::IsNull(inner, negated) => {
            let test = Expr::Eq(Box::new(build(inner)?), Box::new(Expr::Const(Const::Null)));
            if *negated {
                Expr::Not(Box::new(test))
            } else {
                test
            }
        }
        Syntax::Between {
            value,
            low,
            high,
            negated,
        } => between(build(value)?, build(low)?, build(high)?, *negated)?,
        Syntax::In(left, list, negated) => match build(left)? {
            Expr::Prop(prop) => {
                let mut list: Vec<Box<str>> = list.iter().map(|s| s.as_str().into()).collect();
                list.sort_unstable();
                list.dedup();
                Expr::In {
                    prop,
                    list: list.into_boxed_slice(),
                    negated: *negated,
                }
            }
            other => {
                return Err(format!(
                    "Expected a property for In expression, got: {other:?}"
                ))
            }
        },
        Syntax::Text(op, value, pattern, negated) => Expr::Text {
            op: *op,
            value: Box::new(build(value)?),
            pattern: pattern.as_str().into(),
            negated: *negated,
        },
    })
}

fn binary(op: BinOp, left: Expr, right: Expr) -> Result<Expr, String> {
    let (l, r) = (Box::new(left), Box::new(right));
    Ok(match op {
        BinOp::Or => Expr::Or(Box::new(as_boolean(*l)?), Box::new(as_boolean(*r)?)),
        BinOp::And => Expr::And(Box::new(as_boolean(*l)?), Box::new(as_boolean(*r)?)),
        BinOp::Eq => equal(l, r)?,
        BinOp::Ne => Expr::Not(Box::new(equal(l, r)?)),
        BinOp::Gt => ordering(CmpOp::Gt, l, r)?,
        BinOp::Ge => ordering(CmpOp::Ge, l, r)?,
        BinOp::Lt => ordering(CmpOp::Lt, l, r)?,
        BinOp::Le => ordering(CmpOp::Le, l, r)?,
    })
}

fn as_boolean(expr: Expr) -> Result<Expr, String> {
    match expr {
        e if e.is_boolean() => Ok(e),
        Expr::Prop(name) => Ok(Expr::BoolCast(name)),
        other => Err(format!(
            "Expression will not result in a boolean value: {other:?}"
        )),
    }
}

fn equal(left: Box<Expr>, right: Box<Expr>) -> Result<Expr, String> {
    for side in [&left, &right] {
        if matches!(**side, Expr::Const(Const::Null)) {
            return Err("'NULL' cannot be compared.".to_string());
        }
    }
    if left.is_constant() && right.is_constant() && left.is_boolean() && !right.is_boolean() {
        return Err(format!("{left:?} cannot be compared with {right:?}"));
    }
    Ok(Expr::Eq(left, right))
}

fn check_orderable(expr: &Expr) -> Result<(), String> {
    let numeric_literal = matches!(
        expr,
        Expr::Const(Const::Int(_) | Const::Long(_) | Const::Double(_))
    );
    if numeric_literal || !(expr.is_constant() || expr.is_boolean()) {
        return Ok(());
    }
    Err(format!("Value '{expr:?}' cannot be compared."))
}

fn ordering(op: CmpOp, left: Box<Expr>, right: Box<Expr>) -> Result<Expr, String> {
    check_orderable(&left)?;
    check_orderable(&right)?;
    Ok(Expr::Cmp(op, left, right))
}

fn between(value: Expr, low: Expr, high: Expr, negated: bool) -> Result<Expr, String> {
    let value = Box::new(value);
    if negated {
        return Ok(Expr::Or(
            Box::new(ordering(CmpOp::Lt, value.clone(), Box::new(low))?),
            Box::new(ordering(CmpOp::Gt, value, Box::new(high))?),
        ));
    }
    if let (Expr::Const(lo), Expr::Const(hi)) = (&low, &high) {
        let (lo, hi) = (Val::from_const(lo), Val::from_const(hi));
        if lo == Val::Null || hi == Val::Null {
            return Err("Illegal values of between, values can not be null!".to_string());
        }
        match java_compare(hi, lo) {
            Ok(std::cmp::Ordering::Less) => {
                return Err(format!(
                    "Illegal values of between, left value({lo:?}) must less than or equal \
                     to right value({hi:?})"
                ))
            }
            Ok(_) => {}
            Err(_) => return Err(format!("Illegal values of between: {lo:?}, {hi:?}")),
        }
    }
    Ok(Expr::And(
        Box::new(ordering(CmpOp::Ge, value.clone(), Box::new(low))?),
        Box::new(ordering(CmpOp::Le, value, Box::new(high))?),
    ))
}

/// Java's `createFromDecimal`: a long (an `L` suffix allowed), an `Integer` when it fits.
fn decimal(text: &str) -> Result<Const, String> {
    let digits = text.trim_end_matches(['l', 'L']);
    let value: i64 = digits
        .parse()
        .map_err(|_| format!("For input string: \"{digits}\""))?;
    Ok(match i32::try_from(value) {
        Ok(small) => Const::Int(small),
        Err(_) => Const::Long(value),
    })
}

/// Java's `createFloat`: finite and not below `Double.MIN_VALUE`.
fn float(text: &str) -> Result<Const, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("For input string: \"{text}\""))?;
    if value.is_infinite() {
        return Err(format!("{text} is greater than {}", f64::MAX));
    }
    if value < f64::from_bits(1) {
        return Err(format!("{text} is less than 4.9E-324"));
    }
    Ok(Const::Double(value))
}
