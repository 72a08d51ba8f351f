//! The pages in a real browser: headless Chromium loads each page of a console watching a real
//! cluster, runs its JavaScript, and the rendered DOM (not the HTML source, which holds no
//! data) must show the broker, the unreachable broker, the topic with its queues, the group
//! with its lag, a found message and the producer query. A screenshot of each page is written
//! to the system's temporary directory (`ringmq-console-screenshots/`), or to docs/console/ for
//! the README when `RINGMQ_UPDATE_SCREENSHOTS=1`, so a test run never dirties the checkout.
//!
//! Ignored by plain `cargo test` (it needs Chromium); scripts/test.sh installs Chromium and
//! runs it with `--ignored`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// Virtual time the page gets to fetch and render before the DOM is dumped.
const PAGE_BUDGET_MS: &str = "8000";

fn chromium() -> String {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("which")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!("no Chromium found: install it (scripts/test.sh does) or set CHROMIUM");
}

fn chromium_args(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--virtual-time-budget={PAGE_BUDGET_MS}"),
    ])
    .collect()
}

/// The DOM after the page's scripts ran.
fn rendered_dom(browser: &str, profile: &std::path::Path, url: &str) -> String {
    let output = Command::new(browser)
        .args(chromium_args(profile))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn screenshot(browser: &str, profile: &std::path::Path, url: &str, name: &str) {
    let dir = if std::env::var_os("RINGMQ_UPDATE_SCREENSHOTS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console")
    } else {
        std::env::temp_dir().join("ringmq-console-screenshots")
    };
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(format!("{name}.png"));
    let status = Command::new(browser)
        .args(chromium_args(profile))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(status.status.success(), "screenshot of {url} failed");
    assert!(
        std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "{} empty",
        path.display()
    );
}

#[test]
#[ignore = "needs Chromium; scripts/test.sh installs it and runs this with --ignored"]
fn every_page_renders_the_cluster_in_a_browser() {
    let browser = chromium();
    let cluster = Cluster::start();
    let profile = cluster.dir.path().join("chromium-profile");
    let url = |path: &str| format!("http://{}{path}", cluster.http);
    let lag = MESSAGES - i64::from(QUEUES) * COMMITTED;
    let pages: [(&str, &str, Vec<String>); 5] = [
        (
            "cluster",
            "/",
            vec![
                cluster.broker.clone(),
                "online".into(),
                GHOST.into(),
                "UNREACHABLE".into(),
                "<canvas id=\"tps\"".into(),
            ],
        ),
        (
            "topics",
            "/topics",
            vec![
                format!("data-topic=\"{TOPIC}\""),
                format!("{QUEUES} queues"),
                format!("{MESSAGES} messages"),
            ],
        ),
        (
            "consumers",
            "/consumers",
            vec![
                format!("data-group=\"{GROUP}\""),
                format!("<b class=\"lag\">{lag}</b>"),
                TOPIC.into(),
            ],
        ),
        (
            "messages",
            &format!("/messages?topic={TOPIC}&key=key-7"),
            vec![
                "1 message(s)".into(),
                "hello console 7".into(),
                "key-7".into(),
            ],
        ),
        (
            "producers",
            "/producers?group=ConsoleProducer",
            vec![
                cluster.broker.clone(),
                cluster.ghost_addr.clone(),
                "Connection refused".into(),
            ],
        ),
    ];
    for (name, path, expected) in &pages {
        let dom = rendered_dom(&browser, &profile, &url(path));
        for needle in expected {
            assert!(
                dom.contains(needle.as_str()),
                "page {path}: {needle:?} not in the rendered DOM:\n{dom}"
            );
        }
        screenshot(&browser, &profile, &url(path), name);
    }
}
