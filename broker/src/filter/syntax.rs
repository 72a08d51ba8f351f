//! The SQL92 selector grammar RocketMQ accepts (its `SelectorParser.jj`, an ActiveMQ JMS
//! selector with arithmetic, LIKE and hex/octal literals removed), parsed with `nom` into a
//! syntax tree. Java's semantic checks (what may be compared with what) happen afterwards in
//! [`super::build`], so this module only knows tokens and precedence:
//!
//! ```text
//! or      := and (OR and)*
//! and     := eq (AND eq)*
//! eq      := cmp ( '=' cmp | '<>' cmp | IS NULL | IS NOT NULL )*
//! cmp     := unary ( ('>'|'>='|'<'|'<=') unary
//!                  | [NOT] (CONTAINS|STARTSWITH|ENDSWITH) string
//!                  | [NOT] BETWEEN unary AND unary
//!                  | [NOT] IN '(' string (',' string)* ')' )*
//! unary   := '+' unary | '-' unary | NOT unary | primary
//! primary := literal | identifier | '(' or ')'
//! ```
//!
//! Keywords are case-insensitive; identifiers are `[A-Za-z_$][A-Za-z0-9_$]*` and keep their
//! case (property names are case-sensitive). Whitespace, `-- …\n` and `/* … */` are skipped.

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_until, take_while, take_while1};
use nom::character::complete::{char, digit0, digit1, one_of, satisfy};
use nom::combinator::{not, opt, peek, value};
use nom::multi::{many0, separated_list1};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

/// Nesting deeper than this is refused, so a hostile expression cannot overflow the stack
/// (the parser, the checks, the evaluator and drop all recurse).
pub const MAX_NESTING: usize = 64;
/// Most operators in one expression: left-associative chains (`a=1 AND b=2 AND …`) nest without
/// parser recursion, so their length is bounded separately.
pub const MAX_OPERATORS: usize = 512;

/// One node of the parsed selector, before Java's checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Syntax {
    Str(String),
    /// A `DECIMAL_LITERAL` as written (maybe with an `L` suffix).
    Decimal(String),
    /// A `FLOATING_POINT_LITERAL` as written.
    Float(String),
    True,
    False,
    Null,
    Ident(String),
    Plus(Box<Syntax>),
    Negate(Box<Syntax>),
    Not(Box<Syntax>),
    Binary(BinOp, Box<Syntax>, Box<Syntax>),
    IsNull(Box<Syntax>, bool),
    Between {
        value: Box<Syntax>,
        low: Box<Syntax>,
        high: Box<Syntax>,
        negated: bool,
    },
    In(Box<Syntax>, Vec<String>, bool),
    Text(TextOp, Box<Syntax>, String, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The string tests RocketMQ 5 added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

const KEYWORDS: [&str; 12] = [
    "NOT",
    "AND",
    "OR",
    "BETWEEN",
    "IN",
    "TRUE",
    "FALSE",
    "NULL",
    "IS",
    "CONTAINS",
    "STARTSWITH",
    "ENDSWITH",
];

type Res<'a, T> = IResult<&'a str, T>;

/// Parses a whole selector; `Err` carries the unparsed rest (for the error remark).
pub fn parse(input: &str) -> Result<Syntax, String> {
    let mut parser = Descent {
        depth: 0,
        operators: 0,
    };
    let parsed = terminated(|i| parser.or_expr(i), skip).parse(input);
    match parsed {
        Ok(("", tree)) => Ok(tree),
        Ok((rest, _)) => Err(format!("unexpected input at \"{}\"", snippet(rest))),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            Err(format!("syntax error at \"{}\"", snippet(e.input)))
        }
        Err(nom::Err::Incomplete(_)) => Err("incomplete expression".to_string()),
    }
}

fn snippet(rest: &str) -> &str {
    let end = rest.char_indices().nth(20).map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// What `parser` consumed. (nom's `recognize` measures by pointer distance, which is wrong
/// when a parser at the end of input returns an empty slice that does not point into it.)
fn recognize<'a, O, P>(
    mut parser: P,
) -> impl Parser<&'a str, Output = &'a str, Error = nom::error::Error<&'a str>>
where
    P: Parser<&'a str, Output = O, Error = nom::error::Error<&'a str>>,
{
    move |input: &'a str| {
        let (rest, _) = parser.parse(input)?;
        Ok((rest, &input[..input.len() - rest.len()]))
    }
}

/// Whitespace and comments (a `--` comment needs its line end, as in the Java grammar).
fn skip(input: &str) -> Res<'_, ()> {
    let space = take_while1(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'));
    let line = recognize((
        tag("--"),
        take_while(|c| c != '\n' && c != '\r'),
        one_of("\n\r"),
    ));
    let block = recognize((tag("/*"), take_until("*/"), tag("*/")));
    value((), many0(alt((space, line, block)))).parse(input)
}

/// A token after optional whitespace.
fn tok<'a, O, P>(parser: P) -> impl Parser<&'a str, Output = O, Error = nom::error::Error<&'a str>>
where
    P: Parser<&'a str, Output = O, Error = nom::error::Error<&'a str>>,
{
    preceded(skip, parser)
}

/// A case-insensitive keyword that is not the start of a longer identifier.
fn kw<'a>(
    word: &'static str,
) -> impl Parser<&'a str, Output = (), Error = nom::error::Error<&'a str>> {
    value(
        (),
        tok(terminated(tag_no_case(word), not(satisfy(is_ident_char)))),
    )
}

fn string_literal(input: &str) -> Res<'_, String> {
    let body = recognize(many0(alt((tag("''"), take_while1(|c| c != '\'')))));
    let (rest, raw) = tok(delimited(char('\''), body, char('\''))).parse(input)?;
    Ok((rest, raw.replace("''", "'")))
}

fn exponent(input: &str) -> Res<'_, &str> {
    recognize((one_of("eE"), opt(one_of("+-")), digit1)).parse(input)
}

pub(super) fn float_literal(input: &str) -> Res<'_, &str> {
    recognize(alt((
        recognize((digit1, char('.'), digit0, opt(exponent))),
        recognize((char('.'), digit1, opt(exponent))),
        recognize((digit1, exponent)),
    )))
    .parse(input)
}

pub(super) fn decimal_literal(input: &str) -> Res<'_, &str> {
    alt((
        recognize((
            satisfy(|c| ('1'..='9').contains(&c)),
            digit0,
            opt(one_of("lL")),
        )),
        tag("0"),
    ))
    .parse(input)
}

fn identifier(input: &str) -> Res<'_, String> {
    let (rest, word) = tok(recognize((
        satisfy(is_ident_start),
        take_while(is_ident_char),
    )))
    .parse(input)?;
    if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word)) {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Tag,
        )));
    }
    Ok((rest, word.to_string()))
}

pub(super) fn literal(input: &str) -> Res<'_, Syntax> {
    alt((
        string_literal.map(Syntax::Str),
        tok(float_literal).map(|s| Syntax::Float(s.to_string())),
        tok(decimal_literal).map(|s| Syntax::Decimal(s.to_string())),
        kw("TRUE").map(|()| Syntax::True),
        kw("FALSE").map(|()| Syntax::False),
        kw("NULL").map(|()| Syntax::Null),
    ))
    .parse(input)
}

fn string_list(input: &str) -> Res<'_, Vec<String>> {
    delimited(
        tok(char('(')),
        separated_list1(tok(char(',')), string_literal),
        tok(char(')')),
    )
    .parse(input)
}

fn text_op(input: &str) -> Res<'_, TextOp> {
    alt((
        kw("CONTAINS").map(|()| TextOp::Contains),
        kw("STARTSWITH").map(|()| TextOp::StartsWith),
        kw("ENDSWITH").map(|()| TextOp::EndsWith),
    ))
    .parse(input)
}

fn comparison_op(input: &str) -> Res<'_, BinOp> {
    tok(alt((
        value(BinOp::Ge, tag(">=")),
        value(BinOp::Gt, tag(">")),
        value(BinOp::Le, tag("<=")),
        // `<>` belongs to the equality level; refuse it here so `a <> 1` is not `a < (> 1)`.
        value(BinOp::Lt, terminated(tag("<"), not(peek(char('>'))))),
    )))
    .parse(input)
}

/// Holds the nesting depth while recursing.
struct Descent {
    depth: usize,
    operators: usize,
}

impl Descent {
    /// Counts one more operator node; fails past [`MAX_OPERATORS`].
    fn operator<'a>(&mut self, input: &'a str) -> Res<'a, ()> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(nom::Err::Failure(nom::error::Error::new(
                input,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        Ok((input, ()))
    }

    fn or_expr<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(nom::Err::Failure(nom::error::Error::new(
                input,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        let (mut rest, mut left) = self.and_expr(input)?;
        while let Ok((after, ())) = kw("OR").parse(rest) {
            self.operator(after)?;
            let (after, right) = self.and_expr(after)?;
            left = Syntax::Binary(BinOp::Or, Box::new(left), Box::new(right));
            rest = after;
        }
        self.depth -= 1;
        Ok((rest, left))
    }

    fn and_expr<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        let (mut rest, mut left) = self.eq_expr(input)?;
        while let Ok((after, ())) = kw("AND").parse(rest) {
            self.operator(after)?;
            let (after, right) = self.eq_expr(after)?;
            left = Syntax::Binary(BinOp::And, Box::new(left), Box::new(right));
            rest = after;
        }
        Ok((rest, left))
    }

    fn eq_expr<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        let (mut rest, mut left) = self.cmp_expr(input)?;
        loop {
            if let Ok((after, op)) = tok(alt((
                value(BinOp::Eq, tag("=")),
                value(BinOp::Ne, tag("<>")),
            )))
            .parse(rest)
            {
                self.operator(after)?;
                let (after, right) = self.cmp_expr(after)?;
                left = Syntax::Binary(op, Box::new(left), Box::new(right));
                rest = after;
            } else if let Ok((after, negated)) = (kw("IS"), opt(kw("NOT")), kw("NULL"))
                .parse(rest)
                .map(|(r, (_, n, _))| (r, n))
            {
                self.operator(after)?;
                left = Syntax::IsNull(Box::new(left), negated.is_some());
                rest = after;
            } else {
                return Ok((rest, left));
            }
        }
    }

    fn cmp_expr<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        let (mut rest, mut left) = self.unary(input)?;
        loop {
            if let Ok((after, op)) = comparison_op(rest) {
                self.operator(after)?;
                let (after, right) = self.unary(after)?;
                left = Syntax::Binary(op, Box::new(left), Box::new(right));
                rest = after;
                continue;
            }
            let (after_not, negated) = match kw("NOT").parse(rest) {
                Ok((after, ())) => (after, true),
                Err(_) => (rest, false),
            };
            if let Ok((after, op)) = text_op(after_not) {
                self.operator(after)?;
                let (after, pattern) = string_literal(after)?;
                left = Syntax::Text(op, Box::new(left), pattern, negated);
                rest = after;
            } else if let Ok((after, ())) = kw("BETWEEN").parse(after_not) {
                self.operator(after)?;
                let (after, low) = self.unary(after)?;
                let (after, ()) = kw("AND").parse(after)?;
                let (after, high) = self.unary(after)?;
                left = Syntax::Between {
                    value: Box::new(left),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                };
                rest = after;
            } else if let Ok((after, ())) = kw("IN").parse(after_not) {
                self.operator(after)?;
                let (after, list) = string_list(after)?;
                left = Syntax::In(Box::new(left), list, negated);
                rest = after;
            } else {
                // A NOT here that starts nothing belongs to the caller (or is an error there).
                return Ok((rest, left));
            }
        }
    }

    fn unary<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(nom::Err::Failure(nom::error::Error::new(
                input,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        let result = if let Ok((after, _)) = tok(char('+')).parse(input) {
            self.unary(after)
                .map(|(r, e)| (r, Syntax::Plus(Box::new(e))))
        } else if let Ok((after, _)) = tok(char('-')).parse(input) {
            self.unary(after)
                .map(|(r, e)| (r, Syntax::Negate(Box::new(e))))
        } else if let Ok((after, ())) = kw("NOT").parse(input) {
            self.unary(after)
                .map(|(r, e)| (r, Syntax::Not(Box::new(e))))
        } else {
            self.primary(input)
        };
        self.depth -= 1;
        result
    }

    fn primary<'a>(&mut self, input: &'a str) -> Res<'a, Syntax> {
        if let Ok(found) = literal(input) {
            return Ok(found);
        }
        if let Ok((rest, name)) = identifier(input) {
            return Ok((rest, Syntax::Ident(name)));
        }
        let (after, _) = tok(char('(')).parse(input)?;
        let (after, inner) = self.or_expr(after)?;
        let (after, _) = tok(char(')')).parse(after)?;
        Ok((after, inner))
    }
}
