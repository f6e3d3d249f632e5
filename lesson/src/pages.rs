//! A small HTTP/1.0 server on 127.0.0.1 for the lessons that fetch pages (the pool's crawler,
//! gevent's concurrent GETs), so that no lesson needs the internet. Each connection is answered
//! on a thread of its own after a chosen delay, and the server counts how many connections it
//! held open at once (how a lesson shows that its fetches overlapped).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// The server; it stops and joins its threads when dropped.
///
/// What it answers, to `GET PATH`:
/// - a path of the page list given to [`PageServer::start`]: `200 OK` with that many bytes;
/// - `/page/N`: `200 OK` with N bytes;
/// - `/malformed`: bytes that are not HTTP at all;
/// - anything else: `500 Internal Server Error` with an empty body.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let server = lesson::PageServer::start(&[("/small", 5)], Duration::ZERO).unwrap();
/// let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
/// s.write_all(b"GET /small HTTP/1.0\r\n\r\n").unwrap();
/// let mut reply = String::new();
/// s.read_to_string(&mut reply).unwrap();
/// assert!(reply.starts_with("HTTP/1.0 200 OK") && reply.ends_with("xxxxx"));
/// assert_eq!(server.url("/small"), format!("http://{}/small", server.addr()));
/// ```
pub struct PageServer {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct Site {
    pages: Vec<(String, usize)>,
    delay: Duration,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

fn body(size: usize) -> Vec<u8> {
    let mut r = format!("HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
    r.extend(std::iter::repeat_n(b'x', size));
    r
}

impl Site {
    fn reply(&self, path: &str) -> Vec<u8> {
        if let Some((_, size)) = self.pages.iter().find(|(p, _)| p == path) {
            return body(*size);
        }
        if path == "/malformed" {
            return b"this is not http at all".to_vec();
        }
        match path.strip_prefix("/page/").map(str::parse::<usize>) {
            Some(Ok(size)) => body(size),
            _ => b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
        }
    }

    fn answer(&self, mut s: TcpStream) {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        // Read the whole request head (up to the blank line) before answering: closing a
        // socket with unread bytes in it sends a reset, which can destroy the reply on its way.
        let mut reader = BufReader::new(&s);
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() {
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            std::thread::sleep(self.delay);
            let _ = s.write_all(&self.reply(&path));
        }
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PageServer {
    /// Serve on 127.0.0.1 (a free port) until dropped: `pages` are (path, size in bytes), and
    /// every reply waits `delay` first.
    ///
    /// # Errors
    /// If no port can be bound or no thread started.
    pub fn start(pages: &[(&str, usize)], delay: Duration) -> anyhow::Result<PageServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = match listener.local_addr()? {
            SocketAddr::V4(a) => a,
            other => anyhow::bail!("127.0.0.1 gave a non-IPv4 address {other}"),
        };
        let (stop, open, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let site = Arc::new(Site {
            pages: pages.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
            delay,
            open: open.clone(),
            most: most.clone(),
        });
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("page-server".into())
            .spawn(move || {
                let mut answering = Vec::new();
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(s) = conn {
                        let site = site.clone();
                        let spawned = std::thread::Builder::new()
                            .name("page-server".into())
                            .spawn(move || site.answer(s));
                        answering.extend(spawned.ok());
                    }
                    answering.retain(|t: &JoinHandle<()>| !t.is_finished());
                }
                for t in answering {
                    let _ = t.join();
                }
            })
            .context("starting the page server's thread")?;
        Ok(PageServer {
            addr,
            stop,
            open,
            most,
            thread: Some(thread),
        })
    }

    /// The server's address (IPv4: it listens on 127.0.0.1).
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The most connections it held open at once so far (and reset to the current count).
    pub fn take_most(&self) -> usize {
        self.most
            .swap(self.open.load(Ordering::SeqCst), Ordering::SeqCst)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
