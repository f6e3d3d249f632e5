//! Lesson `gevent` (协程, gevent): the seed's crawler: pages fetched one after another, then
//! all at once with spawn + joinall, on one thread. Each response is delayed by the server, so
//! the overlap shows in the cost time and in how many connections the server held at once.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lesson::Cx;

use crate::hub::{self, TcpStream};
use lesson::PageServer;

/// Pages to fetch (sizes in bytes), as the seed's four sites.
pub const PAGES: [usize; 4] = [2_000, 5_000, 1_000, 8_000];

/// The seed's `f(url)`: GET the page, say how many bytes came back.
pub fn fetch(cx: &Cx, addr: SocketAddrV4, path: &str) -> anyhow::Result<usize> {
    let url = format!("http://{addr}{path}");
    cx.say(format!("GET: {url}"));
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("a malformed HTTP response from {url}");
    };
    if !reply.starts_with(b"HTTP/1.") {
        bail!("a malformed HTTP response from {url}");
    }
    let size = reply.len() - split - 4;
    cx.say(format!("{size} bytes received from {url}"));
    Ok(size)
}

/// Fetch `paths` one after another, then all at once on the hub. The results of the second
/// run, both times, and the most connections the server held open in each run.
pub type Runs = (Vec<anyhow::Result<usize>>, Duration, Duration, usize, usize);

/// Both runs against `server`.
pub fn both(cx: &Cx, server: &PageServer, paths: &[String]) -> anyhow::Result<Runs> {
    let addr = server.addr();
    let t = Instant::now();
    for p in paths {
        fetch(cx, addr, p)?;
    }
    let serial = t.elapsed();
    let serial_most = server.take_most();
    let t = Instant::now();
    let tasks = paths
        .iter()
        .map(|p| {
            let (cx, p) = (cx.clone(), p.clone());
            hub::spawn(move || fetch(&cx, addr, &p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&dyn hub::Joinable> = tasks.iter().map(|t| t as &dyn hub::Joinable).collect();
    hub::joinall(&refs)?;
    let together = t.elapsed();
    let results = tasks
        .iter()
        .map(|t| {
            t.take()
                .unwrap_or_else(|| Err(anyhow::anyhow!("did not finish")))
        })
        .collect();
    Ok((results, serial, together, serial_most, server.take_most()))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let server = PageServer::start(&[], cx.scaled(2.0))?;
    let paths: Vec<String> = PAGES.iter().map(|n| format!("/page/{n}")).collect();
    cx.explain("one after another (f(url) four times):");
    let (results, serial, together, serial_most, together_most) = both(cx, &server, &paths)?;
    cx.say(format!(
        "cost time one after another: {:.3} s; with spawn + joinall: {:.3} s",
        serial.as_secs_f64(),
        together.as_secs_f64()
    ));
    cx.say(format!(
        "the server held at most {serial_most} connection(s) open one after another, {together_most} with the hub"
    ));
    ensure!(
        serial_most == 1 && together_most == PAGES.len(),
        "no overlap"
    );
    for (r, want) in results.iter().zip(PAGES) {
        ensure!(
            r.as_ref().is_ok_and(|&n| n == want),
            "a fetch failed: {r:?}"
        );
    }
    cx.explain(
        "One thread: while one request waits for its reply, the hub runs the others. gevent gets\n\
         this by monkey-patching socket; here the calls are hub::TcpStream's. A blocking call\n\
         (std::thread::sleep, a std socket) would stop every task.",
    );
    Ok(())
}
