//! `map` and its kin on a [`Pool`]: `map`, `starmap`, `imap`, `imap_unordered`, and the
//! non-blocking `map_async` / `starmap_async` with their callbacks.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam::channel;

use crate::pool::Pool;
use crate::result::{AsyncResult, ChunkResults, SharedSlot, Slot, as_finished, fill, in_order};
use crate::shared::{PoolError, Task, TaskError};

impl<T: Task> Pool<T> {
    /// Submit `tasks` in chunks of `chunksize`; each chunk's results arrive on the returned
    /// channel as (chunk index, results). Also the size of each chunk.
    pub(crate) fn chunks(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<(Vec<usize>, ChunkResults<T::Output>), PoolError> {
        let chunksize = chunksize.max(1);
        let (tx, rx) = channel::unbounded();
        let mut tasks = tasks.into_iter().peekable();
        let mut sizes = Vec::new();
        while tasks.peek().is_some() {
            let chunk: Vec<T> = tasks.by_ref().take(chunksize).collect();
            let tx = tx.clone();
            let index = sizes.len();
            sizes.push(chunk.len());
            self.submit(
                chunk,
                Box::new(move |results| {
                    let _ = tx.send((index, results));
                }),
            )?;
        }
        Ok((sizes, rx))
    }

    /// Python's default chunk size for `map`: about four chunks per worker.
    pub fn default_chunksize(&self, len: usize) -> usize {
        len.div_ceil(self.processes() * 4).max(1)
    }

    /// Run every task, wait for all of them, and return the results in order, or the first
    /// error (in task order). Replaces `pool.map(func, iterable, chunksize)`, which also
    /// waits for every task before it raises.
    ///
    /// # Errors
    ///
    /// The first task's error; [`TaskError::Terminated`] if the pool is closed.
    pub fn map(&self, tasks: Vec<T>, chunksize: usize) -> Result<Vec<T::Output>, TaskError> {
        let (sizes, rx) = self
            .chunks(tasks, chunksize)
            .map_err(|_| TaskError::Terminated)?;
        let mut chunks = in_order(sizes, rx);
        let mut out = Vec::with_capacity(chunks.total());
        let mut first_error = None;
        // Every chunk, even after an error: map returns once every task has run.
        while let Some(results) = chunks.next_chunk() {
            for r in results {
                match (r, &first_error) {
                    (Ok(v), None) => out.push(v),
                    (Err(e), None) => first_error = Some(e),
                    _ => {}
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// A tuple task type is `starmap`: the task carries all its arguments. Replaces
    /// `pool.starmap(func, [(a, b), ...])`; the same as [`Pool::map`].
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    pub fn starmap(&self, tasks: Vec<T>, chunksize: usize) -> Result<Vec<T::Output>, TaskError> {
        self.map(tasks, chunksize)
    }

    /// The results in order, one per task, as they become available (a reorder buffer holds
    /// early chunks). Replaces `pool.imap(func, iterable, chunksize)`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
    pub fn imap(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<impl Iterator<Item = Result<T::Output, TaskError>> + use<T>, PoolError> {
        let (sizes, rx) = self.chunks(tasks, chunksize)?;
        Ok(in_order(sizes, rx))
    }

    /// The results in the order their chunks finish, one per task. Replaces
    /// `pool.imap_unordered(...)`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
    pub fn imap_unordered(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<impl Iterator<Item = Result<T::Output, TaskError>> + use<T>, PoolError> {
        let (sizes, rx) = self.chunks(tasks, chunksize)?;
        Ok(as_finished(sizes, rx))
    }

    /// [`Pool::map`] without waiting: the handle's `get` gives every result in order, or the
    /// first error in task order, once every task has run. Replaces
    /// `pool.map_async(func, iterable, chunksize)`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
    pub fn map_async(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<T::Output>>, PoolError> {
        self.map_async_with(tasks, chunksize, |_| {}, |_| {})
    }

    /// [`Pool::map_async`] with a `callback` for the results (all of them, in order) and an
    /// `error_callback` for the first error (in task order; Python gives the first to
    /// arrive), run once every task has run, in the parent on the result-handler thread, before
    /// the handle is ready (Python's `callback=` / `error_callback=`). For no tasks at all the
    /// callback runs at once, on the calling thread, with an empty list (Python's skips it).
    /// A callback that panics is caught and counted ([`Pool::callback_panics`]).
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after `close` or `terminate`.
    pub fn map_async_with(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
        callback: impl FnOnce(&Vec<T::Output>) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> Result<AsyncResult<Vec<T::Output>>, PoolError> {
        if self.is_closed() {
            return Err(PoolError::Closed);
        }
        let slot: SharedSlot<Vec<T::Output>> = Arc::new((
            Mutex::new(Slot {
                value: None,
                waiters: 0,
            }),
            Condvar::new(),
        ));
        let chunksize = chunksize.max(1);
        let chunks = tasks.len().div_ceil(chunksize);
        let gather = Arc::new(Mutex::new(Gather {
            parts: (0..chunks).map(|_| None).collect(),
            left: chunks,
            callbacks: Some((
                Box::new(callback) as Box<dyn FnOnce(&Vec<T::Output>) + Send>,
                Box::new(error_callback) as Box<dyn FnOnce(&TaskError) + Send>,
            )),
            slot: slot.clone(),
        }));
        if chunks == 0 {
            if let Some(panicked) = Gather::finish(&gather) {
                self.count_callback_panic(panicked);
            }
            return Ok(AsyncResult { slot });
        }
        let mut tasks = tasks.into_iter();
        for index in 0..chunks {
            let chunk: Vec<T> = tasks.by_ref().take(chunksize).collect();
            let n = chunk.len();
            let g = gather.clone();
            let submitted = self.submit(
                chunk,
                Box::new(move |results| {
                    Gather::add(&g, index, results);
                }),
            );
            if submitted.is_err() {
                // Closed meanwhile: the chunks not sent fail, so the handle still completes.
                let failed = |n: usize| (0..n).map(|_| Err(TaskError::Terminated)).collect();
                Gather::add(&gather, index, failed(n));
                for later in index + 1..chunks {
                    let n = tasks.by_ref().take(chunksize).count();
                    Gather::add(&gather, later, failed(n));
                }
                break;
            }
        }
        Ok(AsyncResult { slot })
    }

    /// [`Pool::map_async`] for a tuple task (Python's `pool.starmap_async(func, [(a, b),
    /// ...])`).
    ///
    /// # Errors
    ///
    /// As [`Pool::map_async`].
    pub fn starmap_async(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<T::Output>>, PoolError> {
        self.map_async(tasks, chunksize)
    }

    /// [`Pool::map_async_with`] for a tuple task (Python's `starmap_async(..., callback=,
    /// error_callback=)`).
    ///
    /// # Errors
    ///
    /// As [`Pool::map_async`].
    pub fn starmap_async_with(
        &self,
        tasks: Vec<T>,
        chunksize: usize,
        callback: impl FnOnce(&Vec<T::Output>) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> Result<AsyncResult<Vec<T::Output>>, PoolError> {
        self.map_async_with(tasks, chunksize, callback, error_callback)
    }
}

type MapCallbacks<O> = (
    Box<dyn FnOnce(&Vec<O>) + Send>,
    Box<dyn FnOnce(&TaskError) + Send>,
);

/// A `map_async`'s chunks, gathered as they complete (on the result-handler thread).
struct Gather<O> {
    parts: Vec<Option<Vec<Result<O, TaskError>>>>,
    left: usize,
    callbacks: Option<MapCallbacks<O>>,
    slot: SharedSlot<Vec<O>>,
}

impl<O> Gather<O> {
    /// Chunk `index`'s results are in; the last one completes the whole (a callback's panic
    /// goes on to the result handler, which counts it).
    fn add(gather: &Mutex<Gather<O>>, index: usize, results: Vec<Result<O, TaskError>>) {
        {
            let mut g = gather.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(part) = g.parts.get_mut(index) {
                *part = Some(results);
            }
            g.left = g.left.saturating_sub(1);
            if g.left > 0 {
                return;
            }
        }
        if let Some(payload) = Gather::finish(gather) {
            std::panic::resume_unwind(payload);
        }
    }

    /// Every chunk is in: the results in order or the first error, the callback, then the
    /// handle. The callback's panic, if it panicked.
    fn finish(gather: &Mutex<Gather<O>>) -> Option<Box<dyn std::any::Any + Send>> {
        let (parts, callbacks, slot) = {
            let mut g = gather.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut g.parts),
                g.callbacks.take(),
                g.slot.clone(),
            )
        };
        let mut all = Vec::new();
        let mut first_error = None;
        for r in parts.into_iter().flat_map(Option::unwrap_or_default) {
            match (r, &first_error) {
                (Ok(v), None) => all.push(v),
                (Err(e), None) => first_error = Some(e),
                _ => {}
            }
        }
        let result = first_error.map_or(Ok(all), Err);
        let called = callbacks.map(|(callback, error_callback)| {
            catch_unwind(AssertUnwindSafe(|| match &result {
                Ok(v) => callback(v),
                Err(e) => error_callback(e),
            }))
        });
        fill(&slot, result);
        called.and_then(Result::err)
    }
}
