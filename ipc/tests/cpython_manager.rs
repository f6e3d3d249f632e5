//! CPython 3.11's `_TestContainers` (dict and list proxies), `_TestManagerRestart`, the
//! lifecycle part of `_TestMyManager`, and the dict, list and value cases of
//! `TestSyncManagerTypes` (`Lib/test/_test_multiprocessing.py`), ported to `ipc::Manager`;
//! each test is named after its original. What is not ported, and why, is in the chapter
//! README's conformance table.

use std::time::Duration;

use ipc::{Data, Manager, ManagerError};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn ints(range: impl IntoIterator<Item = i64>) -> Vec<Data> {
    range.into_iter().map(Data::Int).collect()
}

// _TestContainers

#[test]
fn test_list() {
    let _fork = serial();
    within(LONG, "test_list", || {
        let m = Manager::start().unwrap();
        let a = m.list(ints(0..10)).unwrap();
        assert_eq!(a.slice(None, None).unwrap(), ints(0..10));
        let b = m.list([]).unwrap();
        assert_eq!(b.items().unwrap(), vec![]);
        b.extend(ints(0..5)).unwrap();
        assert_eq!(b.items().unwrap(), ints(0..5));
        assert_eq!(b.get(2).unwrap(), Data::Int(2));
        assert_eq!(b.slice(Some(2), Some(10)).unwrap(), ints(2..5));
        // `b *= 2` (not offered as one request: a copy and an extend).
        b.extend(b.items().unwrap()).unwrap();
        assert_eq!(b.items().unwrap(), [ints(0..5), ints(0..5)].concat());
        // `b + [5, 6]` is a new list, as in Python.
        let mut plus = b.items().unwrap();
        plus.extend(ints(5..7));
        assert_eq!(plus, [ints(0..5), ints(0..5), ints(5..7)].concat());
        assert_eq!(a.items().unwrap(), ints(0..10));
    });
}

#[test]
fn test_list_iter() {
    let _fork = serial();
    within(LONG, "test_list_iter", || {
        let m = Manager::start().unwrap();
        let a = m.list(ints(0..10)).unwrap();
        let mut it = a.items().unwrap().into_iter();
        assert_eq!(it.by_ref().collect::<Vec<_>>(), ints(0..10));
        assert_eq!(it.next(), None); // exhausted
        // Python's iterator is a proxy that sees `a[0] = 100`; `items()` is a copy.
        let mut it = a.items().unwrap().into_iter();
        a.set(0, 100).unwrap();
        assert_eq!(it.next(), Some(Data::Int(0)));
        assert_eq!(a.get(0).unwrap(), Data::Int(100));
    });
}

#[test]
fn test_dict() {
    let _fork = serial();
    within(LONG, "test_dict", || {
        let m = Manager::start().unwrap();
        let d = m.dict().unwrap();
        let indices: Vec<i64> = (65..70).collect();
        let chr = |i: i64| Data::Str(char::from(i as u8).to_string());
        for &i in &indices {
            d.set(i, chr(i)).unwrap();
        }
        let copy: Vec<(Data, Data)> = indices.iter().map(|&i| (Data::Int(i), chr(i))).collect();
        assert_eq!(d.items().unwrap(), copy);
        assert_eq!(d.keys().unwrap(), ints(indices.clone()));
        assert_eq!(
            d.values().unwrap(),
            indices.iter().map(|&i| chr(i)).collect::<Vec<_>>()
        );
        assert_eq!(d.len().unwrap(), 5);
    });
}

#[test]
fn test_dict_iter() {
    let _fork = serial();
    within(LONG, "test_dict_iter", || {
        let m = Manager::start().unwrap();
        let d = m.dict().unwrap();
        for i in 65..70 {
            d.set(i, i).unwrap();
        }
        let mut it = d.keys().unwrap().into_iter();
        assert_eq!(it.by_ref().collect::<Vec<_>>(), ints(65..70));
        assert_eq!(it.next(), None); // exhausted
        // Python raises RuntimeError when the dict changes size under an iterator; a copy
        // cannot see the change.
        let mut it = d.keys().unwrap().into_iter();
        d.clear().unwrap();
        assert_eq!(it.next(), Some(Data::Int(65)));
        assert!(d.is_empty().unwrap());
    });
}

// _TestManagerRestart

#[test]
fn test_rapid_restart() {
    let _fork = serial();
    within(LONG, "test_rapid_restart", || {
        let manager = Manager::start().unwrap();
        let queue = manager.list([]).unwrap();
        let q = queue.clone();
        let mut p = Process::new(move || q.append("hello world"));
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(queue.pop(None).unwrap(), Data::from("hello world"));
        let first = manager.socket_dir().to_owned();
        manager.shutdown();
        assert!(!first.exists());
        // Python restarts on the same address and may meet EADDRINUSE; each Manager here has a
        // fresh private directory, so a restart at once always works.
        let manager = Manager::start().unwrap();
        manager.value(1).unwrap();
        assert_ne!(manager.socket_dir(), first);
    });
}

// _TestMyManager (its lifecycle; registering new types has no meaning here)

#[test]
fn test_mymanager_context() {
    let _fork = serial();
    within(LONG, "test_mymanager_context", || {
        let (pid, dir) = {
            let manager = Manager::start().unwrap();
            manager.dict().unwrap().set(1, 1).unwrap();
            (
                manager.server_pid().unwrap(),
                manager.socket_dir().to_owned(),
            )
        };
        // Leaving the block stopped the server and reaped it, and removed its socket.
        assert!(!dir.exists());
        assert!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
            "the server is still there"
        );
    });
}

// TestSyncManagerTypes (list, dict, value: a worker process uses what the parent made)
mod test_sync_manager_types {

    use super::*;

    fn run_worker(f: impl FnOnce() -> Result<(), ManagerError> + Send + 'static) {
        let mut p = Process::new(f);
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0, "the worker's checks failed");
    }

    #[test]
    fn test_list() {
        let _fork = serial();
        within(LONG, "list", || {
            let manager = Manager::start().unwrap();
            let o = manager.list([]).unwrap();
            o.append(5).unwrap();
            let obj = o.clone();
            run_worker(move || {
                assert_eq!(obj.get(0)?, Data::Int(5));
                assert_eq!(obj.len()?, 1);
                assert_eq!(obj.pop(Some(0))?, Data::Int(5));
                Ok(())
            });
            assert!(o.is_empty().unwrap());
            assert_eq!(o.len().unwrap(), 0);
        });
    }

    #[test]
    fn test_dict() {
        let _fork = serial();
        within(LONG, "dict", || {
            let manager = Manager::start().unwrap();
            let o = manager.dict().unwrap();
            o.set("foo", 5).unwrap();
            let obj = o.clone();
            run_worker(move || {
                assert_eq!(obj.len()?, 1);
                assert_eq!(obj.get("foo")?, Some(Data::Int(5)));
                assert_eq!(obj.items()?, vec![(Data::from("foo"), Data::Int(5))]);
                assert_eq!(obj.keys()?, vec![Data::from("foo")]);
                assert_eq!(obj.values()?, vec![Data::Int(5)]);
                assert_eq!(obj.remove("foo")?, Some(Data::Int(5)));
                Ok(())
            });
            assert!(o.is_empty().unwrap());
            assert_eq!(o.len().unwrap(), 0);
        });
    }

    #[test]
    fn test_value() {
        let _fork = serial();
        within(LONG, "value", || {
            let manager = Manager::start().unwrap();
            let o = manager.value(1).unwrap();
            let obj = o.clone();
            run_worker(move || {
                assert_eq!(obj.get()?, 1);
                obj.set(2)
            });
            assert_eq!(o.get().unwrap(), 2);
        });
    }
}
