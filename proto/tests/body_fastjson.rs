//! Property tests: fastjson's unquoted-numeric-key dialect parses to the same value as standard
//! JSON, for arbitrary maps and nesting.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringmq_proto::body::fastjson::quote_numeric_keys;
use ringmq_proto::body::{BrokerData, JsonBody};

/// Renders a map with integer keys the way fastjson does: keys unquoted.
fn fastjson_map(map: &BTreeMap<i64, String>) -> String {
    let entries: Vec<String> = map
        .iter()
        .map(|(id, addr)| format!("{id}:{}", serde_json::to_string(addr).unwrap()))
        .collect();
    format!("{{{}}}", entries.join(","))
}

proptest! {
    #[test]
    fn unquoted_broker_addrs_parse_like_quoted(
        addrs in prop::collection::btree_map(any::<i64>(), "[ -~]{0,20}", 0..8),
        name in "[ -~]{0,12}",
    ) {
        let text = format!(
            r#"{{"brokerAddrs":{},"brokerName":{},"cluster":"c"}}"#,
            fastjson_map(&addrs),
            serde_json::to_string(&name).unwrap()
        );
        let broker = BrokerData::from_json(text.as_bytes()).unwrap();
        prop_assert_eq!(&broker.broker_addrs, &addrs);
        prop_assert_eq!(&broker.broker_name, &name);
        prop_assert_eq!(BrokerData::from_json(broker.to_json().as_bytes()).unwrap(), broker);
    }

    #[test]
    fn standard_json_values_are_never_changed(value in arb_json()) {
        let text = serde_json::to_string(&value).unwrap();
        let normalized = quote_numeric_keys(text.as_bytes());
        prop_assert_eq!(&normalized[..], text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = quote_numeric_keys(&bytes);
        let _ = BrokerData::from_json(&bytes);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[ -~0-9]{0,6}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
