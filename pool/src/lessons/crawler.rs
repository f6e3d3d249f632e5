//! Lesson `crawler` (回调函数, 进程池应用): workers fetch pages; a callback in the parent appends
//! `url:<...> size:[...]` lines to a db file. The pages come from a small HTTP server this
//! lesson starts on 127.0.0.1 (no internet needed), and the db file lives in a temporary
//! directory that is removed afterwards.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use lesson::{Activity, Cx, PageServer};

use crate::lessons::tasks::{Fetch, FetchAsSeed, Page};
use crate::{Pool, TaskError};

/// The pages the server (`lesson::PageServer`) offers, with their sizes; `/broken`, like any
/// other path, answers 500.
pub const PAGES: [(&str, usize); 3] = [("/small", 512), ("/medium", 4096), ("/large", 65536)];

/// A directory removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system's temporary directory.
    fn new() -> anyhow::Result<TempDir> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir(
            std::env::temp_dir().join(format!("pool-crawler-{}-{nanos:x}-{n}", std::process::id())),
        );
        std::fs::create_dir(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Crawl the server's pages plus `/broken` on Pool(3): the db file's lines and the errors
/// that reached the error callback.
pub fn crawl(cx: &Cx) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut pool: Pool<Fetch> = Pool::new(3)?; // workers first, then the server's thread
    let server = PageServer::start(&PAGES, Duration::ZERO)?;
    let dir = TempDir::new()?;
    let db = dir.0.join("db.txt");
    cx.say(format!(
        "the db file: {} (in a temporary directory, removed afterwards)",
        db.display()
    ));
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
                append(&c, &db, page);
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
    Ok((read_lines(&db), err_rx.iter().collect()))
}

/// What the seed's crawler, as written, did on this pool.
#[derive(Debug)]
pub struct AsWritten {
    /// The db file's lines.
    pub lines: Vec<String>,
    /// The messages of the callbacks that panicked (`Pool::callback_panics`).
    pub panics: Vec<String>,
    /// Each url's result, from its `AsyncResult` after `join`: `Ok(None)` for the page that
    /// was not there (the task itself succeeded).
    pub results: Vec<(String, Result<Option<Page>, TaskError>)>,
}

/// The seed's crawler as written: `get_page` returns `None` for the 500 page, and its callback
/// reads the page regardless (`res['url']`; here `unwrap`), so it panics on the
/// result-handler thread. `join` returns all the same.
///
/// # Errors
///
/// If the pool, the server or the temporary directory cannot be made.
pub fn crawl_as_written(cx: &Cx) -> anyhow::Result<AsWritten> {
    let mut pool: Pool<FetchAsSeed> = Pool::new(3)?;
    let server = PageServer::start(&PAGES, Duration::ZERO)?;
    let dir = TempDir::new()?;
    let db = dir.0.join("db.txt");
    cx.say(format!(
        "the db file: {} (in a temporary directory, removed afterwards)",
        db.display()
    ));
    let talk = cx.handoff();
    let mut handles = Vec::new();
    for url in PAGES
        .iter()
        .map(|(p, _)| server.url(p))
        .chain([server.url("/broken")])
    {
        let (c, db) = (cx.clone(), db.clone());
        let task = FetchAsSeed {
            url: url.clone(),
            talk: talk.clone(),
        };
        let h = pool.apply_async_with(
            task,
            move |res: &Option<Page>| {
                // pasrse_page(res): res['url'] on None is Python's TypeError.
                let res = res.as_ref().unwrap();
                c.say(format!("parse {}", res.url));
                append(&c, &db, res);
            },
            |_| {},
        )?;
        handles.push((url, h));
    }
    pool.close();
    let waiting = cx.span(Activity::Wait, "p.join()");
    pool.join()?;
    waiting.end();
    let panics = pool.callback_panics();
    let results = handles.into_iter().map(|(u, h)| (u, h.get())).collect();
    Ok(AsWritten {
        lines: read_lines(&db),
        panics,
        results,
    })
}

/// Append the seed's `url:<...> size:[...]` line for `page` to the db file.
fn append(cx: &Cx, db: &std::path::Path, page: &Page) {
    let line = format!("url:<{}> size:[{}]\n", page.url, page.size);
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(db)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = appended {
        cx.say(format!("cannot append to the db file: {e}"));
    }
}

fn read_lines(db: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(db)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "1. The seed's crawler as written, with one page that answers 500: get_page returns\n\
         None for it, and pasrse_page(None) reads res['url'] (here: unwraps the Option).",
    );
    let seed = crawl_as_written(cx)?;
    for l in &seed.lines {
        cx.say(format!("db.txt: {l}"));
    }
    for p in &seed.panics {
        cx.say(format!("a callback panicked on pool-results, caught: {p}"));
    }
    let broken = seed.results.iter().find(|(u, _)| u.ends_with("/broken"));
    cx.say(format!(
        "p.join() returned; {} db lines; {} callback panicked; the 500 page's get(): {}",
        seed.lines.len(),
        seed.panics.len(),
        broken.map_or("missing".to_owned(), |(_, r)| format!("{r:?}"))
    ));
    ensure!(
        seed.lines.len() == PAGES.len(),
        "every good page's callback should have run, even after the panic"
    );
    ensure!(
        seed.panics.len() == 1 && seed.panics[0].contains("None"),
        "exactly the 500 page's callback should have panicked: {:?}",
        seed.panics
    );
    ensure!(
        seed.results
            .iter()
            .all(|(u, r)| matches!(r, Ok(None)) == u.ends_with("/broken") && r.is_ok()),
        "every task succeeded; only the 500 page's result is None: {:?}",
        seed.results
    );
    cx.explain(
        "In Python the TypeError kills the Pool's result-handler thread: no later result is\n\
         handled, and p.join() waits forever (the seed hangs here, and never reaches its\n\
         res.get() loop). This pool catches a panicking callback on its result thread, counts\n\
         it (Pool::callback_panics), still hands the task's result to its AsyncResult, runs\n\
         every other callback, and join returns.",
    );
    cx.explain(
        "2. Fixed: a page that is not 200 is the task's error, so it goes to error_callback.",
    );
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
         callbacks already had them. The temporary directories and the servers are gone now.",
    );
    Ok(())
}
