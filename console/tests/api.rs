//! The console's JSON API against a real name server and broker: brokers (and an unreachable
//! one), topics with queues and offsets, a group with its lag, message search, topic create
//! and delete, and the pages' HTML shell on every page path.

mod common;

use common::*;
use serde_json::Value;

fn json(cluster: &Cluster, path: &str) -> Value {
    let (status, body) = http_get(&cluster.http, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn the_api_shows_the_cluster_as_it_is() {
    let cluster = Cluster::start();

    let overview = json(&cluster, "/api/cluster");
    let brokers = overview["brokers"].as_array().unwrap();
    let live = brokers
        .iter()
        .find(|b| b["addr"] == cluster.broker.as_str())
        .expect("broker listed");
    assert_eq!(live["reachable"], true);
    assert_eq!(live["role"], "MASTER");
    assert!(live["put_total"].as_u64().unwrap() >= MESSAGES as u64);
    let ghost = brokers
        .iter()
        .find(|b| b["broker_name"] == GHOST)
        .expect("ghost listed");
    assert_eq!(ghost["reachable"], false, "{ghost}");
    assert!(ghost["error"]
        .as_str()
        .unwrap()
        .contains(&cluster.ghost_addr));

    let topic = json(&cluster, &format!("/api/topics/{TOPIC}"));
    let queues = topic["queues"].as_array().unwrap();
    assert_eq!(queues.len(), QUEUES as usize);
    let stored: i64 = queues
        .iter()
        .map(|q| q["max_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, MESSAGES);

    let consumers = json(&cluster, "/api/consumers");
    let group = consumers["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == GROUP)
        .expect("group listed");
    assert_eq!(group["total_lag"], MESSAGES - i64::from(QUEUES) * COMMITTED);
    assert_eq!(group["queues"].as_array().unwrap().len(), QUEUES as usize);
    assert!(!consumers["lag"][GROUP].as_array().unwrap().is_empty());

    let found = json(&cluster, &format!("/api/messages?topic={TOPIC}&key=key-7"));
    let messages = found["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{found}");
    assert_eq!(messages[0]["body_preview"], "hello console 7");
    let by_id = json(
        &cluster,
        &format!(
            "/api/messages?topic={TOPIC}&msg_id={}",
            messages[0]["msg_id"].as_str().unwrap()
        ),
    );
    assert_eq!(by_id["messages"][0]["body_preview"], "hello console 7");
    let by_offset = json(
        &cluster,
        &format!("/api/messages?topic={TOPIC}&queue_id=0&offset=0"),
    );
    assert_eq!(
        by_offset["messages"].as_array().unwrap().len(),
        1,
        "{by_offset}"
    );

    for page in ["/", "/topics", "/consumers", "/messages", "/producers"] {
        let (status, html) = http_get(&cluster.http, page);
        assert_eq!(status, 200);
        assert!(html.contains("/assets/app.js"), "{page}");
    }
    let (status, js) = http_get(&cluster.http, "/assets/app.js");
    assert_eq!(status, 200);
    assert!(js.contains("drawChart"));
}

#[test]
fn topics_are_created_and_deleted_through_the_api() {
    let cluster = Cluster::start();
    let (status, body) = http(
        &cluster.http,
        "POST",
        "/api/topics",
        Some(r#"{"topic":"MadeByConsole","queue_nums":3}"#),
    );
    assert_eq!(status, 200, "{body}");
    let outcomes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcomes[&cluster.broker]["Ok"], "ok", "{body}");
    assert!(
        outcomes[&cluster.ghost_addr]["Err"].is_string(),
        "the unreachable broker is reported: {body}"
    );
    cluster.wait_for("the new topic's route", |c| {
        let (_, body) = http_get(&c.http, "/api/topics/MadeByConsole");
        body.contains("\"queue_id\":2")
    });
    let (status, body) = http(
        &cluster.http,
        "POST",
        "/api/topics",
        Some(r#"{"topic":"bad topic!","queue_nums":3}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("error"));
    let (status, body) = http(&cluster.http, "DELETE", "/api/topics/MadeByConsole", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("\"{}\":{{\"Ok\"", cluster.namesrv)),
        "{body}"
    );
    cluster.wait_for("the topic gone from the list", |c| {
        let (_, body) = http_get(&c.http, "/api/topics");
        !body.contains("MadeByConsole")
    });
}
