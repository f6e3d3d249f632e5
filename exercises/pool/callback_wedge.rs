//! pool -- crawler: a callback that panics, and a parent that waits forever for it.
//!
//! After the lesson `cargo run -p pool -- crawler`.
//! Check your work: `cargo xtask exercise callback-wedge`.
//! Run it: `cargo run --bin callback-wedge` in `exercises/`.
//!
//! The seed's `get_page` returns `None` for a page that is not there (status not 200), and
//! its callback `pasrse_page` indexes `res['url']` regardless. Here `fetch` returns
//! `Option<Page>` and the callback unwraps it. The pool catches a panicking callback and goes
//! on, but the message that callback was to send never comes, and the parent, counting
//! replies, waits for it forever.

use std::sync::mpsc;

use pool::{Pool, Task};
use serde::{Deserialize, Serialize};

/// A fetched page.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// Where it came from.
    pub url: String,
    /// Its text.
    pub text: String,
}

/// A task: fetch one url (from a pretend web: no network here).
#[derive(Serialize, Deserialize)]
pub struct Fetch(pub String);

impl Task for Fetch {
    type Output = Option<Page>;
    fn run(self) -> anyhow::Result<Option<Page>> {
        if self.0.contains("timeout") {
            anyhow::bail!("{}: timed out", self.0);
        }
        if self.0.contains("missing") {
            return Ok(None); // status 404
        }
        let text = format!("<html>{}</html>", self.0);
        Ok(Some(Page { url: self.0, text }))
    }
}

/// What the crawl found: (url, size) for each page fetched, in any order, and how many urls
/// gave no page.
pub type Crawl = (Vec<(String, usize)>, usize);

// TODO(pool -- crawler): every url must send exactly one message, or the loop below waits
// for it forever. A missing page makes the callback panic before it sends (the unwrap), and a
// failed fetch goes to the error callback, which sends nothing. Send a `Err(...)` in both
// cases: no unwrap in the callback, and a sending error callback.
/// Fetch every url on a pool of 3 workers; record the pages in the parent, as they come.
pub fn crawl(urls: &[&str]) -> anyhow::Result<Crawl> {
    let mut pool = Pool::new(3)?;
    let (tx, rx) = mpsc::channel::<Result<(String, usize), String>>();
    for url in urls {
        let tx = tx.clone();
        pool.apply_async_with(
            Fetch(url.to_string()),
            move |page: &Option<Page>| {
                let page = page.as_ref().unwrap();
                let _ = tx.send(Ok((page.url.clone(), page.text.len())));
            },
            |_error| {},
        )?;
    }
    let (mut fetched, mut failed) = (Vec::new(), 0);
    for _ in urls {
        match rx.recv()? {
            Ok(page) => fetched.push(page),
            Err(_) => failed += 1,
        }
    }
    pool.close();
    pool.join()?;
    Ok((fetched, failed))
}

fn main() -> anyhow::Result<()> {
    let (fetched, failed) = crawl(&["python.org", "missing.org", "rust-lang.org"])?;
    println!("fetched {fetched:?}, {failed} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exercise_check::nothing_left;

    #[test]
    fn every_page_fetched() {
        let (mut fetched, failed) = nothing_left(|| crawl(&["a.org", "bb.org"])).unwrap();
        fetched.sort();
        assert_eq!(
            fetched,
            [("a.org".to_owned(), 18), ("bb.org".to_owned(), 19)]
        );
        assert_eq!(failed, 0);
    }

    #[test]
    fn a_missing_page_and_a_failed_fetch_are_counted() {
        let (fetched, failed) =
            nothing_left(|| crawl(&["a.org", "missing.org", "timeout.org", "bb.org"])).unwrap();
        assert_eq!(fetched.len(), 2);
        assert_eq!(failed, 2, "missing.org and timeout.org");
    }
}
