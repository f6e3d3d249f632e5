//! Lesson `crawler` (回调函数, 进程池应用): workers fetch pages; a callback in the parent appends
//! `url:<...> size:[...]` lines to a db file. The pages come from a small HTTP server this
//! lesson starts on 127.0.0.1 (no internet needed), and the db file lives in a temporary
//! directory that is removed afterwards.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx};

use crate::Pool;
use crate::lessons::tasks::Fetch;

/// The pages the server offers, with their sizes; `/broken` answers 500.
pub const PAGES: [(&str, usize); 3] = [("/small", 512), ("/medium", 4096), ("/large", 65536)];

/// A tiny HTTP/1.0 server on 127.0.0.1, one thread, stopped and joined on drop.
pub struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn answer(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    // Read the whole request head (up to the blank line) before answering: closing a socket
    // with unread bytes in it sends a reset, which can destroy the reply on its way.
    let mut reader = BufReader::new(&s);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let reply = match PAGES.iter().find(|(p, _)| *p == path) {
        Some((_, size)) => {
            let mut r = format!("HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
            r.extend(std::iter::repeat_n(b'x', *size));
            r
        }
        None => b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = s.write_all(&reply);
}

impl PageServer {
    /// Bind 127.0.0.1:0 and serve until dropped.
    pub fn start() -> anyhow::Result<PageServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("page-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(s) = conn {
                        answer(s);
                    }
                }
            })?;
        Ok(PageServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/path`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

/// A directory removed (with its contents) on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Crawl the server's pages plus `/broken` on Pool(3): the db file's lines and the errors
/// that reached the error callback.
pub fn crawl(cx: &Cx) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut pool: Pool<Fetch> = Pool::new(3)?; // workers first, then the server's thread
    let server = PageServer::start()?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = TempDir(
        std::env::temp_dir().join(format!("pool-crawler-{}-{nanos:x}", std::process::id())),
    );
    std::fs::create_dir(&dir.0)?;
    let db = dir.0.join("db.txt");
    let (err_tx, err_rx) = mpsc::channel();
    let talk = cx.handoff();
    let urls = PAGES
        .iter()
        .map(|(p, _)| server.url(p))
        .chain([server.url("/broken")]);
    for url in urls {
        let (c, db, err_tx, c2) = (cx.clone(), db.clone(), err_tx.clone(), cx.clone());
        pool.apply_async_with(
            Fetch {
                url,
                talk: talk.clone(),
            },
            move |page| {
                c.say(format!(
                    "parse {} (in the parent, pid {})",
                    page.url,
                    std::process::id()
                ));
                let line = format!("url:<{}> size:[{}]\n", page.url, page.size);
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&db)
                    .and_then(|mut f| f.write_all(line.as_bytes()));
                if let Err(e) = appended {
                    c.say(format!("cannot append to the db file: {e}"));
                }
            },
            move |e| {
                c2.say(format!("error_callback: {e}"));
                let _ = err_tx.send(e.to_string());
            },
        )?;
    }
    pool.close();
    let waiting = cx.span(Activity::Wait, "p.join()");
    pool.join()?;
    waiting.end();
    drop(err_tx);
    let lines = std::fs::read_to_string(&db)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    Ok((lines, err_rx.iter().collect()))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let (lines, errors) = crawl(cx)?;
    for l in &lines {
        cx.say(format!("db.txt: {l}"));
    }
    ensure!(
        lines.len() == PAGES.len(),
        "expected {} db lines",
        PAGES.len()
    );
    for (path, size) in PAGES {
        ensure!(
            lines
                .iter()
                .any(|l| l.contains(&format!("{path}> size:[{size}]"))),
            "no db line for {path} with size {size}"
        );
    }
    ensure!(
        errors.len() == 1,
        "the broken page should reach error_callback once"
    );
    cx.explain(
        "The workers do the slow part (the request); the parent only writes a line per result,\n\
         in the callback. The seed then calls res.get() on every result: redundant, since the\n\
         callbacks already had them. The temporary directory and the server are gone now.",
    );
    Ok(())
}
