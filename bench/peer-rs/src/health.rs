//! /healthz (always 200) and /readyz (200 once both reflectors listed, 503 before), as controller-runtime's
//! health probe server answers them. Two fixed answers need no HTTP framework: one small task per connection
//! reads the request head and writes a response with `Connection: close`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub async fn serve(listener: TcpListener, ready: Arc<AtomicBool>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), answer(conn, &ready)).await;
        });
    }
}

async fn answer(mut conn: TcpStream, ready: &AtomicBool) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let mut n = 0;
    // Read until the end of the head (or a full buffer: only the request line matters).
    while n < buf.len() {
        let m = conn.read(&mut buf[n..]).await?;
        if m == 0 {
            break;
        }
        n += m;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let line = buf[..n]
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body): (&str, &str) = match path {
        _ if method != b"GET" && method != b"HEAD" => {
            ("405 Method Not Allowed", "method not allowed\n")
        }
        b"/healthz" | b"/healthz/" | b"/healthz/ping" => ("200 OK", "ok"),
        b"/readyz" | b"/readyz/" | b"/readyz/caches" => {
            if ready.load(Ordering::Acquire) {
                ("200 OK", "ok")
            } else {
                (
                    "503 Service Unavailable",
                    "[-]caches failed: reason withheld\nhealthz check failed\n",
                )
            }
        }
        _ => ("404 Not Found", "404 page not found\n"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    if method != b"HEAD" {
        conn.write_all(body.as_bytes()).await?;
    }
    conn.shutdown().await
}
