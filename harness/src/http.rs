//! A minimal HTTP/1.1 client for loopback admin APIs (Envoy's admin, Kafka Connect's
//! REST API), usable from synchronous code without a runtime.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `method path` on `127.0.0.1:port` with an optional JSON body.
pub fn request(port: u16, method: &str, path: &str, json: Option<&str>) -> Result<Response> {
    request_at(Ipv4Addr::LOCALHOST, port, method, path, json)
}

/// `method path` on `host:port` (a pod's address) with an optional JSON body.
pub fn request_at(
    host: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<Response> {
    let address = std::net::SocketAddr::from((host, port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = json.unwrap_or("");
    let content = if json.is_some() {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n{content}Connection: close\r\n\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: not an HTTP response: {head}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response { status, body })
}

/// GET `path` on `127.0.0.1:port`, requiring 200.
pub fn get(port: u16, path: &str) -> Result<String> {
    get_at(Ipv4Addr::LOCALHOST, port, path)
}

/// GET `path` on `host:port`, requiring 200.
pub fn get_at(host: Ipv4Addr, port: u16, path: &str) -> Result<String> {
    let response = request_at(host, port, "GET", path, None)?;
    anyhow::ensure!(
        response.status == 200,
        "GET {path}: {} {}",
        response.status,
        response.body
    );
    Ok(response.body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
