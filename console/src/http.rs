//! The HTTP side: pages (one HTML shell, one path per page), static assets shipped in the
//! binary, and the JSON API the pages and scripts use.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::bridge::Bridge;
use crate::consumers::ResetRequest;
use crate::error::ConsoleError;
use crate::messages::MessageQuery;
use crate::topics::TopicUpdate;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// Paths that serve the page shell; the script renders the page the path names.
pub const PAGES: [&str; 5] = ["/", "/topics", "/consumers", "/messages", "/producers"];

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = match &self {
            ConsoleError::BadInput(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_GATEWAY,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

type ApiResult = Result<Json<serde_json::Value>, ConsoleError>;

pub fn router(bridge: Bridge) -> Router {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(|| async { Html(INDEX_HTML) }));
    }
    router
        .route(
            "/assets/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE_CSS) }),
        )
        .route("/api/cluster", get(cluster))
        .route("/api/topics", get(topics).post(update_topic))
        .route("/api/topics/:topic", get(topic).delete(delete_topic))
        .route("/api/consumers", get(consumers))
        .route("/api/consumers/:group/reset", post(reset_offset))
        .route("/api/messages", get(messages))
        .route("/api/producers", get(producers))
        .with_state(bridge)
}

fn to_json<T: serde::Serialize>(value: T) -> ApiResult {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| ConsoleError::BadInput(e.to_string()))
}

/// The last sample: brokers with TPS, cluster TPS series.
async fn cluster(State(bridge): State<Bridge>) -> ApiResult {
    bridge
        .call(|remote| async move {
            let h = remote.history.borrow();
            json!({
                "namesrv": remote.namesrv_addrs,
                "access_key": remote.config.credentials.as_ref().map(|c| c.access_key.clone()),
                "sampled_at_ms": h.sampled_at_ms,
                "error": h.cluster_error,
                "brokers": h.brokers,
                "tps_in": h.tps_in,
                "tps_out": h.tps_out,
            })
        })
        .await
        .map(Json)
}

async fn topics(State(bridge): State<Bridge>) -> ApiResult {
    to_json(bridge.call(|r| async move { r.topics().await }).await??)
}

async fn topic(State(bridge): State<Bridge>, Path(name): Path<String>) -> ApiResult {
    to_json(
        bridge
            .call(move |r| async move { r.topic(&name).await })
            .await?,
    )
}

async fn update_topic(State(bridge): State<Bridge>, Json(update): Json<TopicUpdate>) -> ApiResult {
    to_json(
        bridge
            .call(move |r| async move { r.update_topic(&update).await })
            .await??,
    )
}

async fn delete_topic(State(bridge): State<Bridge>, Path(name): Path<String>) -> ApiResult {
    to_json(
        bridge
            .call(move |r| async move { r.delete_topic(&name).await })
            .await??,
    )
}

/// The last sample of every group with its lag series.
async fn consumers(State(bridge): State<Bridge>) -> ApiResult {
    bridge
        .call(|remote| async move {
            let h = remote.history.borrow();
            json!({
                "sampled_at_ms": h.sampled_at_ms,
                "error": h.groups_error,
                "cut": h.groups_cut,
                "groups": h.groups,
                "lag": h.lag,
                "consume_tps": h.consume_tps,
            })
        })
        .await
        .map(Json)
}

async fn reset_offset(
    State(bridge): State<Bridge>,
    Path(group): Path<String>,
    Json(reset): Json<ResetRequest>,
) -> ApiResult {
    to_json(
        bridge
            .call(move |r| async move { r.reset_offset(&group, &reset).await })
            .await??,
    )
}

async fn messages(State(bridge): State<Bridge>, Query(query): Query<MessageQuery>) -> ApiResult {
    to_json(
        bridge
            .call(move |r| async move { r.search(&query).await })
            .await??,
    )
}

#[derive(serde::Deserialize)]
struct ProducerQuery {
    group: String,
}

async fn producers(State(bridge): State<Bridge>, Query(q): Query<ProducerQuery>) -> ApiResult {
    let answers = bridge
        .call(move |r| async move { r.producer_connections(&q.group).await })
        .await??;
    let rows: serde_json::Map<String, serde_json::Value> = answers
        .into_iter()
        .map(|(addr, answer)| match answer {
            Ok(body) => (addr, json!({ "connections": body })),
            Err(e) => (addr, json!({ "error": e })),
        })
        .collect();
    to_json(rows)
}
