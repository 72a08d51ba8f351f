//! Grammar and Java-semantics cases. Expected values follow RocketMQ's filter module
//! (`SelectorParser`, `ComparisonExpression`, `LogicExpression`, `UnaryExpression`) and its
//! `ExpressionTest` cases.

use ringmq_testkit::sample_record;
use std::collections::HashMap;

use super::syntax::{MAX_NESTING, MAX_OPERATORS};
use super::*;

fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn matches(expression: &str, pairs: &[(&str, &str)]) -> bool {
    SqlFilter::compile(expression)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .matches(&props(pairs))
}

fn refused(expression: &str) -> bool {
    SqlFilter::compile(expression).is_err()
}

#[test]
fn numeric_comparisons_read_properties_as_numbers() {
    let p = [("a", "3"), ("b", "3.5"), ("big", "10000000000")];
    assert!(matches("a > 2", &p));
    assert!(matches("a >= 3 AND a <= 3", &p));
    assert!(!matches("a < 3", &p));
    assert!(matches("a = 3", &p));
    assert!(matches("a <> 4", &p));
    assert!(matches("b > 3.4", &p));
    assert!(matches("a < b", &p), "two properties compare as doubles");
    assert!(matches("big > 9999999999", &p), "long literal reads a long");
    // Java reads the property with the literal's type: Integer.valueOf("3.5") throws.
    assert!(!matches("b > 3", &p));
    assert!(!matches("b < 3", &p));
    // An int literal cannot read a value past Integer range either.
    assert!(!matches("big > 1", &p));
    assert!(matches("big > 1.0", &p));
    assert!(matches("a > -1", &p));
    assert!(matches("a = +3", &p));
    assert!(matches("a = 3L", &p));
}

#[test]
fn missing_or_non_numeric_properties_never_match() {
    let p = [("s", "abc")];
    for e in [
        "x > 1",
        "x < 1",
        "x = 1",
        "x <> 1",
        "x = 'a'",
        "x BETWEEN 1 AND 2",
    ] {
        assert!(!matches(e, &p), "{e}");
    }
    assert!(!matches("s > 1", &p));
    assert!(!matches("s < 1", &p));
    // The failure abandons the whole expression, as the Java exception does.
    assert!(!matches("s > 1 OR TRUE", &p));
    // Unknown, not false: NOT of it is unknown too.
    assert!(!matches("NOT (x > 1)", &p));
    assert!(matches("NOT (x > 1) OR s = 'abc'", &p));
}

#[test]
fn strings_compare_only_for_equality() {
    let p = [("tag", "TagA"), ("q", "it's")];
    assert!(matches("tag = 'TagA'", &p));
    assert!(!matches("tag = 'taga'", &p), "case-sensitive");
    assert!(matches("tag <> 'TagB'", &p));
    assert!(matches("q = 'it''s'", &p));
    assert!(refused("tag > 'TagA'"));
    assert!(refused("'a' < tag"));
    assert!(refused("tag >= TRUE"));
    assert!(refused("(a > 1) > 2"));
}

#[test]
fn between_in_and_null_tests() {
    let p = [("a", "5"), ("c", "blue"), ("TAGS", "TagA")];
    assert!(matches("a BETWEEN 1 AND 5", &p));
    assert!(!matches("a BETWEEN 6 AND 9", &p));
    assert!(matches("a NOT BETWEEN 6 AND 9", &p));
    assert!(!matches("a NOT BETWEEN 1 AND 9", &p));
    assert!(refused("a BETWEEN 9 AND 1"));
    assert!(refused("a BETWEEN NULL AND 1"));
    assert!(matches("c IN ('red', 'blue')", &p));
    assert!(!matches("c NOT IN ('red', 'blue')", &p));
    assert!(matches("c NOT IN ('red', 'green', 'x', 'y', 'z')", &p));
    assert!(!matches("zz IN ('a')", &p) && !matches("zz NOT IN ('a')", &p));
    assert!(refused("'x' IN ('a')"));
    assert!(refused("a IN (1, 2)"));
    assert!(matches("zz IS NULL", &p));
    assert!(!matches("a IS NULL", &p));
    assert!(matches("a IS NOT NULL AND TAGS = 'TagA'", &p));
    assert!(refused("a = NULL"));
}

#[test]
fn logic_is_three_valued() {
    let p = [("a", "1")];
    assert!(matches("TRUE", &p));
    assert!(!matches("FALSE", &p));
    assert!(matches("x = 1 OR a = 1", &p));
    assert!(!matches("x = 1 AND a = 1", &p));
    assert!(
        matches("NOT (x = 1 AND a = 2)", &p),
        "unknown AND false is false"
    );
    assert!(
        !matches("NOT (x = 1 AND a = 1)", &p),
        "unknown AND true is unknown"
    );
    assert!(!matches("NOT (x = 1 OR a = 2)", &p));
    assert!(matches("NOT(a = 2)", &p));
    // A bare property is a boolean test that is never true.
    assert!(!matches("a", &p));
    assert!(
        !matches("NOT a = 'x'", &p),
        "NOT binds to `a`, then a boolean = string throws"
    );
    assert!(matches("a = TRUE OR a = '1'", &p));
    assert!(matches("b = TRUE", &[("b", "true")]));
    assert!(matches("b = TRUE", &[("b", "TRUE")]));
    assert!(!matches("b = TRUE", &[("b", "yes")]));
}

#[test]
fn grammar_edges() {
    let p = [("a", "1"), ("$x_1", "2"), ("A", "9")];
    assert!(
        matches("a=1 and $x_1=2 or false", &p),
        "keywords are case-insensitive"
    );
    assert!(matches("A = 9", &p), "names are case-sensitive");
    assert!(matches("  ( ( a = 1 ) )  ", &p));
    assert!(matches("/* note */ a = 1 -- trailing\n", &p));
    assert!(matches("a = 1.0", &p));
    assert!(matches("a < 1.5E1 AND a > .5 AND a < 5.", &p));
    assert!(matches("a >= 1e0", &p));
    assert!(
        refused("a > 0.0"),
        "Java refuses floats below Double.MIN_VALUE"
    );
    assert!(refused("a > 1e999"));
    assert!(refused("a > 99999999999999999999"));
    for bad in [
        "",
        "a =",
        "a = 'x",
        "(a = 1",
        "a = 1)",
        "a == 1",
        "a != 1",
        "a LIKE 'x'",
        "a = 1 AND",
        "AND",
        "a.b = 1",
        "a = 007",
        "a IN ()",
        "5",
        "'x'",
        "a = 1 --x",
        "a BETWEEN 1",
        "a IS",
        "a IS NOT",
        "NOT",
        "a = \"x\"",
    ] {
        assert!(refused(bad), "{bad:?} should be refused");
    }
}

#[test]
fn rocketmq_5_text_tests() {
    let p = [("s", "hello world")];
    assert!(matches("s CONTAINS 'lo w'", &p));
    assert!(matches("s STARTSWITH 'hell'", &p));
    assert!(matches("s ENDSWITH 'world'", &p));
    assert!(matches("s NOT CONTAINS 'xyz'", &p));
    assert!(!matches("s CONTAINS ''", &p));
    assert!(
        !matches("x NOT CONTAINS 'a'", &p),
        "missing is false in both forms"
    );
}

#[test]
fn java_double_parsing() {
    use eval::parse_double;
    assert_eq!(parse_double(" 1.5 "), Ok(1.5));
    assert_eq!(parse_double("2d"), Ok(2.0));
    assert_eq!(parse_double("-Infinity"), Ok(f64::NEG_INFINITY));
    assert!(parse_double("NaN").unwrap().is_nan());
    assert!(parse_double("inf").is_err());
    assert!(parse_double("1,5").is_err());
    assert!(parse_double("").is_err());
    assert!(
        matches("n > 1000.0", &[("n", "NaN")]),
        "NaN sorts above everything"
    );
    assert!(
        !matches("n > 1000", &[("n", "NaN")]),
        "Integer.valueOf(\"NaN\") throws"
    );
}

#[test]
fn hostile_expressions_are_refused_without_overflow() {
    let deep = format!(
        "{}a = 1{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert!(refused(&deep));
    let nots = format!("{}a", "NOT ".repeat(10_000));
    assert!(refused(&nots));
    let chain = vec!["a = 1"; MAX_OPERATORS + 2].join(" AND ");
    assert!(refused(&chain));
    let ok_chain = vec!["a = 1"; 100].join(" AND ");
    assert!(matches(&ok_chain, &[("a", "1")]));
    assert!(refused(&"x".repeat(MAX_EXPRESSION_BYTES + 1)));
}

#[test]
fn raw_properties_are_read_in_place() {
    let mut raw = Vec::new();
    ringmq_proto::message::encode_properties(
        [("TAGS", "TagA"), ("a", "7"), ("a", "8"), ("bin", "x")],
        &mut raw,
    );
    let filter = SqlFilter::compile("TAGS = 'TagA' AND a = 8").unwrap();
    assert!(
        filter.matches_properties(&raw),
        "last duplicate wins, as Java's map"
    );
    assert!(!SqlFilter::compile("a = 7")
        .unwrap()
        .matches_properties(&raw));
    let mut not_utf8 = b"k\x01\xff\xfe\x02".to_vec();
    not_utf8.extend_from_slice(&raw);
    assert!(SqlFilter::compile("k IS NOT NULL")
        .unwrap()
        .matches_properties(&not_utf8));
}

#[test]
fn cache_compiles_once_per_version() {
    let mut cache = FilterCache::default();
    let a = cache.get_or_compile("g", "T", 1, "a > 1").unwrap();
    let b = cache.get_or_compile("g", "T", 1, "a > 1").unwrap();
    assert!(Rc::ptr_eq(&a, &b));
    let c = cache.get_or_compile("g", "T", 2, "a > 2").unwrap();
    assert!(!Rc::ptr_eq(&a, &c));
    assert_eq!(cache.len(), 1);
    assert!(cache.get_or_compile("g", "U", 1, "a >").is_err());
    assert!(cache.get_or_compile("g", "U", 1, "a >").is_err());
    assert_eq!(cache.len(), 2);
    let e = cache.get_or_compile("g", "U", 1, "a >").unwrap_err();
    assert!(e.to_string().starts_with("Invalid MessageSelector. "));
}

#[test]
fn pulls_return_only_matching_records() {
    use crate::store::{GetRequest, GetStatus, Store, StoreConfig};
    use ringmq_proto::message::Record;
    let dir = tempfile::tempdir().unwrap();
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .unwrap();
    ex.run(async {
        let store = Store::open(StoreConfig::new(dir.path(), 0)).await.unwrap();
        for i in 0..20 {
            let mut properties = Vec::new();
            let value = i.to_string();
            ringmq_proto::message::encode_properties([("n", value.as_str())], &mut properties);
            let record = Record {
                born_timestamp: 1,
                born_host: "127.0.0.1:1".parse().unwrap(),
                store_host: "127.0.0.1:2".parse().unwrap(),
                ..sample_record(b"T", 0, b"x", &properties)
            };
            store.append(&[record]).await.unwrap();
        }
        let filter = SqlFilter::compile("n >= 5 AND n < 8").unwrap();
        let req = GetRequest {
            topic: "T",
            queue_id: 0,
            offset: 0,
            max_count: 32,
            max_bytes: 1 << 20,
            tag_hashes: None,
        };
        let got = store
            .get_messages_matching(&req, Some(&filter))
            .await
            .unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert_eq!(got.message_count, 3);
        assert_eq!(got.next_begin_offset, 20);
        let strict = SqlFilter::compile("n > 100").unwrap();
        let none = store
            .get_messages_matching(&req, Some(&strict))
            .await
            .unwrap();
        assert_eq!(none.status, GetStatus::NoMatchedMessage);
        assert_eq!(none.next_begin_offset, 20);
        assert!(none.body.is_empty());
    });
}

/// Every expression here reads several properties, some repeated, some missing.
const SINGLE_PASS_EXPRESSIONS: [&str; 8] = [
    "TAGS = 'TagA' AND region IN ('eu-west', 'us-east') AND price BETWEEN 10 AND 20.5",
    "vip IS NOT NULL AND (qty >= 12 OR price > 100.0)",
    "color = 'red' OR qty < 5",
    "a = 8 AND a > 7 AND NOT (b IS NULL)",
    "a < b OR c CONTAINS 'x'",
    "missing IS NULL AND a BETWEEN 1 AND 9",
    "b NOT IN ('1', '2') OR a <> 8",
    "vip AND a = 8",
];

const SINGLE_PASS_PROPERTIES: [&[(&str, &str)]; 4] = [
    &[
        ("TAGS", "TagA"),
        ("region", "eu-west"),
        ("price", "17.25"),
        ("qty", "12"),
    ],
    &[
        ("a", "7"),
        ("b", "9.5"),
        ("a", "8"),
        ("c", "xyz"),
        ("vip", "true"),
    ],
    &[("qty", "3"), ("color", "blue"), ("b", "2")],
    &[],
];

#[test]
fn one_scan_reads_what_one_lookup_per_reference_reads() {
    for expression in SINGLE_PASS_EXPRESSIONS {
        let filter = SqlFilter::compile(expression).unwrap();
        assert!(filter.property_names().len() <= MAX_SLOTS, "{expression}");
        for pairs in SINGLE_PASS_PROPERTIES {
            let mut raw = Vec::new();
            ringmq_proto::message::encode_properties(pairs.iter().copied(), &mut raw);
            let per_reference = filter.matches(&RawProperties(&raw));
            assert_eq!(
                filter.matches_properties(&raw),
                per_reference,
                "{expression} on {pairs:?}"
            );
            // The map keeps the last duplicate too.
            assert_eq!(filter.matches(&props(pairs)), per_reference, "{expression}");
        }
    }
}

#[test]
fn one_scan_splits_items_as_java_does() {
    // Short items, empty names and values, a missing final 0x02, a name that only matches a
    // prefix, a value holding 0x01, and a repeated name: read as `find_property` reads them.
    let raws: [&[u8]; 7] = [
        b"a\x011\x02\x02b\x01\x02\x01c\x02a\x012",
        b"a\x01\x01x\x02b\x012\x02ab\x019\x02a",
        b"\x01\x01\x02a\x0171\x02b",
        b"b\x0133\x02a\x015",
        b"",
        b"\x02\x02\x02",
        b"aa\x011\x02a\x01\x02",
    ];
    let filter = SqlFilter::compile("a IS NULL OR b IS NULL OR a > 1 AND b < 3").unwrap();
    let probe = SqlFilter::compile("a = '\x01x' OR a = '5'").unwrap();
    for raw in raws {
        for f in [&filter, &probe] {
            assert_eq!(
                f.matches_properties(raw),
                f.matches(&RawProperties(raw)),
                "{raw:?}"
            );
        }
        let resolved = Resolved::scan(raw, filter.property_names(), u64::MAX);
        for name in ["a", "b"] {
            let prop = build::PropRef {
                name: name.into(),
                slot: u16::from(name == "b"),
            };
            assert_eq!(
                resolved.get(&prop),
                RawProperties(raw).get(&prop),
                "{name} in {raw:?}"
            );
        }
    }
}

#[test]
fn each_referenced_name_gets_one_slot() {
    let filter = SqlFilter::compile("a = 1 AND (b > 2 OR a < 3) AND c IN ('x') AND b").unwrap();
    let names: Vec<&str> = filter.property_names().iter().map(|n| &**n).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn more_names_than_slots_fall_back_to_one_scan_per_reference() {
    let names: Vec<String> = (0..=MAX_SLOTS).map(|i| format!("p{i}")).collect();
    let expression = names
        .iter()
        .map(|n| format!("{n} = '{n}'"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let filter = SqlFilter::compile(&expression).unwrap();
    assert_eq!(filter.property_names().len(), MAX_SLOTS + 1);
    let mut raw = Vec::new();
    ringmq_proto::message::encode_properties(
        names.iter().map(|n| (n.as_str(), n.as_str())),
        &mut raw,
    );
    assert!(filter.matches_properties(&raw));
    raw.truncate(raw.len() - 1 - names[MAX_SLOTS].len() * 2 - 1);
    assert!(
        !filter.matches_properties(&raw),
        "the last property is gone"
    );
}
