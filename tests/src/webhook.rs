//! A webhook receiver on a loopback port: answers every POST with 200 and records it (its
//! `Idempotency-Key` header and its JSON body), in arrival order. Plain HTTP/1.1 with keep-alive,
//! enough for an HTTP client's POSTs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One POST received.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Its `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// Its body.
    pub body: serde_json::Value,
}

/// A running webhook receiver, stopped on drop.
pub struct Webhook {
    received: Arc<Mutex<Vec<Posted>>>,
    task: JoinHandle<()>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Webhook {
    /// Listens on `addr` (port 0: a free one).
    pub async fn start(addr: SocketAddr) -> Webhook {
        let listener = TcpListener::bind(addr).await.expect("bind the webhook");
        let addr = listener.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, sink.clone()));
            }
        });
        Webhook {
            received,
            task,
            addr,
        }
    }

    /// `http://{addr}/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Posted> {
        self.received.lock().expect("not poisoned").clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the requests of one connection until it closes.
async fn serve(stream: TcpStream, sink: Arc<Mutex<Vec<Posted>>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut key = None;
        let mut line = String::new();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("idempotency-key") {
                    key = Some(value.to_string());
                }
            }
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        sink.lock().expect("not poisoned").push(Posted {
            idempotency_key: key,
            body,
        });
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if stream.get_mut().write_all(answer).await.is_err() {
            return;
        }
    }
}
