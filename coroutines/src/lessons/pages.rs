//! A small HTTP/1.0 server on 127.0.0.1 for the `gevent` lesson: every response is delayed,
//! and the server counts how many connections it holds open at once.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// The server; stops and joins its thread when dropped.
pub struct SlowPages {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn answer(mut s: TcpStream, delay: Duration, open: &AtomicUsize, most: &AtomicUsize) {
    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
    most.fetch_max(now, Ordering::SeqCst);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&s);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    std::thread::sleep(delay);
    let reply = if path == "/malformed" {
        b"this is not http at all".to_vec()
    } else {
        let size = path
            .trim_start_matches("/page/")
            .parse::<usize>()
            .unwrap_or(1000);
        let mut r = format!("HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        r.extend(std::iter::repeat_n(b'x', size));
        r
    };
    let _ = s.write_all(&reply);
    open.fetch_sub(1, Ordering::SeqCst);
}

impl SlowPages {
    /// Serve on 127.0.0.1:0, each reply after `delay`; `/page/N` is N bytes, `/malformed`
    /// is not HTTP.
    pub fn start(delay: Duration) -> anyhow::Result<SlowPages> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = match listener.local_addr()? {
            std::net::SocketAddr::V4(a) => a,
            other => anyhow::bail!("unexpected address {other}"),
        };
        let (stop, open, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (flag, o, m) = (stop.clone(), open.clone(), most.clone());
        let thread = std::thread::Builder::new()
            .name("slow-pages".into())
            .spawn(move || {
                let mut workers = Vec::new();
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(s) = conn {
                        let (o, m) = (o.clone(), m.clone());
                        workers.push(std::thread::spawn(move || answer(s, delay, &o, &m)));
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })?;
        Ok(SlowPages {
            addr,
            stop,
            open,
            most,
            thread: Some(thread),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The most connections it held open at once so far (and reset to the current count).
    pub fn take_most(&self) -> usize {
        self.most
            .swap(self.open.load(Ordering::SeqCst), Ordering::SeqCst)
    }
}

impl Drop for SlowPages {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
