//! The `/metrics` endpoint of the broker and the name server: one plain thread with a blocking
//! listener, serving one scrape at a time with a caller-supplied renderer (which reads only
//! what the serving threads publish, e.g. atomics). A slow or stuck scraper costs the server
//! threads nothing; a client that sends nothing is dropped after [`SCRAPE_READ_TIMEOUT_MS`].
//! The text itself is produced by the `prometheus-client` crate in each server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a scraper may take to send its request line and headers.
pub const SCRAPE_READ_TIMEOUT_MS: u64 = 2_000;
/// Largest request head read; a GET for /metrics is a few hundred bytes.
pub const REQUEST_HEAD_MAX_BYTES: usize = 8 * 1024;
/// RocketMQ 5's default `metricsPromExporterPort` (the broker's).
pub const DEFAULT_PROM_PORT: u16 = 5557;

/// Produces the text format on each scrape.
pub type RenderFn = Box<dyn Fn() -> String + Send>;

/// A running exporter; [`Exporter::stop`] ends its thread.
pub struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds `addr` and serves `GET /metrics` with `render` on a new thread.
    pub fn spawn(addr: SocketAddr, render: RenderFn) -> std::io::Result<Exporter> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-http".to_string())
            .spawn(move || serve(&listener, &render, &thread_stop))?;
        Ok(Exporter {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (useful when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: &TcpListener, render: &RenderFn, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream, render) {
                    tracing::debug!(error = %e, "metrics scrape failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics endpoint accept failed"),
        }
    }
}

fn answer(mut stream: TcpStream, render: &RenderFn) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(SCRAPE_READ_TIMEOUT_MS)))?;
    stream.set_write_timeout(Some(Duration::from_millis(SCRAPE_READ_TIMEOUT_MS)))?;
    let head = read_head(&mut stream)?;
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "only /metrics is served\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line ending the request head (or the size cap).
fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_HEAD_MAX_BYTES {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_metrics_and_refuses_other_paths() {
        let exporter = Exporter::spawn(
            "127.0.0.1:0".parse().unwrap(),
            Box::new(|| "x_total 1\n# EOF\n".to_string()),
        )
        .unwrap();
        let addr = exporter.local_addr();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx_total 1\n# EOF\n"));
        assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
        exporter.stop();
    }
}
