//! Lesson `gevent` (协程, gevent): the seed's crawler, run twice on one thread with spawn +
//! joinall. First as the seed wrote it: it never calls `monkey.patch_all()`, so `requests`
//! uses the standard, blocking socket, and the four GETs run one after another even though
//! they are four greenlets. Then patched: the hub's cooperative sockets, and the four overlap.
//! Each response is delayed by the server, so the difference shows in the cost time, in how
//! many connections the server held at once, and on the timeline (each task under its own
//! name, `Greenlet-1` ... as gevent names them).

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lesson::{Activity, Cx, PageServer};

use super::turns::HubTimeline;
use crate::hub::{self, TcpStream};

/// Pages to fetch (sizes in bytes), as the seed's four sites.
pub const PAGES: [usize; 4] = [2_000, 5_000, 1_000, 8_000];

/// The body's size in an HTTP reply, or an error naming `url`.
fn body_size(url: &str, reply: &[u8]) -> anyhow::Result<usize> {
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("a malformed HTTP response from {url}");
    };
    if !reply.starts_with(b"HTTP/1.") {
        bail!("a malformed HTTP response from {url}");
    }
    Ok(reply.len() - split - 4)
}

/// The seed's `f(url)`, patched: GET the page over the hub's cooperative socket (what
/// `monkey.patch_all()` makes of `socket`), say how many bytes came back.
///
/// # Errors
/// If the connection fails, or the reply is not HTTP.
pub fn fetch(cx: &Cx, addr: SocketAddrV4, path: &str) -> anyhow::Result<usize> {
    let url = format!("http://{addr}{path}");
    cx.say(format!("GET: {url}"));
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let size = body_size(&url, &reply)?;
    cx.say(format!("{size} bytes received from {url}"));
    Ok(size)
}

/// The seed's `f(url)` as the seed ran it: over the standard socket, which blocks the whole
/// thread (and with it every task of the hub) until the reply comes. The timeline shows the
/// wait as holding (the thread, which the other tasks want), inside the task's one working
/// stretch: it never gave the thread back.
///
/// # Errors
/// If the connection fails, the reply does not come within `cx.long_wait()`, or it is not
/// HTTP.
pub fn fetch_blocking(cx: &Cx, addr: SocketAddrV4, path: &str) -> anyhow::Result<usize> {
    let url = format!("http://{addr}{path}");
    cx.say(format!("GET: {url}"));
    let mut s =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(cx.long_wait()))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut reply = Vec::new();
    {
        let _blocked = cx.span(Activity::Hold, "blocked in recv, holding the thread");
        s.read_to_end(&mut reply)?;
    }
    let size = body_size(&url, &reply)?;
    cx.say(format!("{size} bytes received from {url}"));
    Ok(size)
}

/// One crawl: what each fetch gave, how long all took, the most connections the server held
/// at once, and the tasks' names (in the order spawned).
#[derive(Debug)]
pub struct Crawl {
    /// Each page's size, or its error.
    pub results: Vec<anyhow::Result<usize>>,
    /// From the first spawn to the end of joinall.
    pub took: Duration,
    /// The most connections the server held open at once during the crawl.
    pub most_open: usize,
    /// The tasks' names on the timeline, in the order spawned.
    pub names: Vec<String>,
}

/// The seed's program: `joinall([spawn(f, url) ...])`, `patched` or not (see [`fetch`] and
/// [`fetch_blocking`]); the tasks are named `Greenlet-{first}`, `Greenlet-{first + 1}`, ...
///
/// # Errors
/// If a task cannot be spawned or the hub cannot wait; a fetch's failure is in its result.
pub fn crawl(
    cx: &Cx,
    server: &PageServer,
    paths: &[String],
    patched: bool,
    first: usize,
) -> anyhow::Result<Crawl> {
    let addr = server.addr();
    server.take_most();
    let timeline = HubTimeline::install()?;
    let t = Instant::now();
    let mut names = Vec::new();
    let mut tasks = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let name = format!("Greenlet-{}", first + i);
        let (me, p) = (cx.as_speaker(name.clone()), p.clone());
        let task = hub::spawn(move || {
            if patched {
                fetch(&me, addr, &p)
            } else {
                fetch_blocking(&me, addr, &p)
            }
        })?;
        timeline.name(task.id(), &cx.as_speaker(name.clone()));
        names.push(name);
        tasks.push(task);
    }
    let refs: Vec<&dyn hub::Joinable> = tasks.iter().map(|t| t as &dyn hub::Joinable).collect();
    hub::joinall(&refs)?;
    let took = t.elapsed();
    drop(timeline);
    let results = tasks
        .iter()
        .map(|t| {
            t.take()
                .unwrap_or_else(|| Err(anyhow::anyhow!("did not finish")))
        })
        .collect();
    Ok(Crawl {
        results,
        took,
        most_open: server.take_most(),
        names,
    })
}

/// Both crawls against `server`, the seed's first: (the patched crawl's results, the seed's
/// time, the patched time, the most connections open in the seed's crawl, in the patched one).
pub type Runs = (Vec<anyhow::Result<usize>>, Duration, Duration, usize, usize);

/// Both crawls against `server` (see [`Runs`]).
///
/// # Errors
/// As [`crawl`].
pub fn both(cx: &Cx, server: &PageServer, paths: &[String]) -> anyhow::Result<Runs> {
    let seed = crawl(cx, server, paths, false, 1)?;
    let patched = crawl(cx, server, paths, true, 1 + paths.len())?;
    Ok((
        patched.results,
        seed.took,
        patched.took,
        seed.most_open,
        patched.most_open,
    ))
}

fn check(crawl: &Crawl) -> anyhow::Result<()> {
    for (r, want) in crawl.results.iter().zip(PAGES) {
        ensure!(
            r.as_ref().is_ok_and(|&n| n == want),
            "a fetch failed: {r:?}"
        );
    }
    Ok(())
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    let server = PageServer::start(&[], cx.scaled(2.0))?;
    let paths: Vec<String> = PAGES.iter().map(|n| format!("/page/{n}")).collect();
    cx.explain(
        "The seed as written: four greenlets with spawn + joinall, but no monkey.patch_all(),\n\
         so requests reads from the standard socket, which blocks the thread:",
    );
    let seed = crawl(cx, &server, &paths, false, 1)?;
    check(&seed)?;
    cx.say(format!(
        "as the seed wrote it: cost time {:.3} s; the server held at most {} connection(s) at once",
        seed.took.as_secs_f64(),
        seed.most_open
    ));
    cx.explain("Patched (monkey.patch_all(): here, the hub's TcpStream):");
    let patched = crawl(cx, &server, &paths, true, 1 + paths.len())?;
    check(&patched)?;
    cx.say(format!(
        "patched: cost time {:.3} s; the server held at most {} connection(s) at once",
        patched.took.as_secs_f64(),
        patched.most_open
    ));
    ensure!(
        seed.most_open == 1 && patched.most_open == PAGES.len(),
        "expected 1 connection at a time unpatched and {} patched, got {} and {}",
        PAGES.len(),
        seed.most_open,
        patched.most_open
    );
    cx.explain(
        "Greenlets alone do not make I/O overlap: a greenlet runs until it switches, and the\n\
         standard socket never switches, it blocks the one thread. gevent overlaps I/O only\n\
         where its hub does the waiting, which is what monkey-patching arranges. Rust cannot\n\
         patch std, so the cooperative calls are explicit (hub::TcpStream); a blocking call\n\
         (std::thread::sleep, a std socket) inside a task stops every task, as above.",
    );
    Ok(())
}
