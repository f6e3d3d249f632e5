//! CPython 3.11's manager tests for what issue 20 added (`Lib/test/_test_multiprocessing.py`):
//! `_TestContainers.test_namespace`, `_TestMyManager` (registered types), `_TestRemoteManager`
//! (connecting by address), and `TestSyncManagerTypes.test_queue`, `test_joinable_queue`'s
//! queue half and `test_namespace`; each named after its original. Then the faults of the new
//! objects: a registered method that panics, a client killed while its `get` waits.

use std::time::Duration;

use ipc::manager::Managed;
use ipc::{Data, Manager, ManagerError, QueueProxy};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

fn s(text: &str) -> Data {
    Data::from(text)
}

// _TestContainers

/// Python's `str(n)` hides names starting with `_`; `items()` here is every attribute.
#[test]
fn test_namespace() {
    let _fork = serial();
    within(LONG, "test_namespace", || {
        let m = Manager::start().unwrap();
        let n = m.namespace().unwrap();
        n.set("name", "Bob").unwrap();
        n.set("job", "Builder").unwrap();
        n.set("_hidden", "hidden").unwrap();
        assert_eq!(
            (n.get("name").unwrap(), n.get("job").unwrap()),
            (s("Bob"), s("Builder"))
        );
        assert_eq!(n.remove("job").unwrap(), s("Builder"));
        let shown: Vec<(String, Data)> = n
            .items()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .collect();
        assert_eq!(shown, [("name".to_owned(), s("Bob"))]);
        assert!(n.has("name").unwrap());
        assert!(!n.has("job").unwrap());
        assert!(matches!(
            n.get("job"),
            Err(ManagerError::NoSuchAttribute(_))
        ));
    });
}

// _TestMyManager

/// Python's `FooBar`: `f()` answers, `g()` raises, `_h()` is hidden unless exposed (`Bar`).
struct FooBar {
    exposed_h: bool,
}

impl Managed for FooBar {
    fn call(&mut self, method: &str, _args: Vec<Data>) -> Result<Data, String> {
        match method {
            "f" => Ok(s("f()")),
            "g" => Err("ValueError".to_owned()),
            "_h" if self.exposed_h => Ok(s("_h()")),
            other => Err(format!("method {other:?} is not exposed")),
        }
    }
}

/// Python's `baz`: a generator of squares behind an iterator proxy.
struct Squares(i64);

impl Managed for Squares {
    fn call(&mut self, method: &str, _args: Vec<Data>) -> Result<Data, String> {
        match method {
            "__next__" if self.0 < 10 => {
                self.0 += 1;
                Ok(Data::Int((self.0 - 1) * (self.0 - 1)))
            }
            "__next__" => Err("StopIteration".to_owned()),
            other => Err(format!("no method {other:?}")),
        }
    }
}

fn my_manager() -> Manager {
    Manager::builder()
        .register("Foo", |_| Ok(Box::new(FooBar { exposed_h: false })))
        .register("Bar", |_| Ok(Box::new(FooBar { exposed_h: true })))
        .register("baz", |_| Ok(Box::new(Squares(0))))
        .start()
        .unwrap()
}

fn common(manager: &Manager) {
    let foo_obj = manager.create("Foo", []).unwrap();
    let bar = manager.create("Bar", []).unwrap();
    let baz_obj = manager.create("baz", []).unwrap();
    assert_eq!(foo_obj.call("f", []).unwrap(), s("f()"));
    let g = foo_obj.call("g", []).unwrap_err();
    assert!(g.to_string().contains("ValueError"), "{g}");
    assert!(foo_obj.call("_h", []).is_err(), "Foo does not expose _h");
    assert_eq!(bar.call("f", []).unwrap(), s("f()"));
    assert_eq!(bar.call("_h", []).unwrap(), s("_h()"));
    let mut squares = Vec::new();
    while let Ok(v) = baz_obj.call("__next__", []) {
        squares.push(v);
    }
    assert_eq!(
        squares,
        (0..10).map(|i| Data::Int(i * i)).collect::<Vec<_>>()
    );
    assert!(manager.create("Nope", []).is_err());
}

#[test]
fn test_mymanager() {
    let _fork = serial();
    within(LONG, "test_mymanager", || {
        let m = my_manager();
        common(&m);
        m.shutdown();
    });
}

#[test]
fn test_mymanager_context_prestarted() {
    let _fork = serial();
    within(LONG, "test_mymanager_context_prestarted", || {
        let m = my_manager();
        {
            common(&m);
        }
        drop(m);
    });
}

// _TestRemoteManager

/// Python's values include `None`, `True`, a float and bytes: `Data` holds integers,
/// strings and lists, so those become an integer and a list of byte values.
fn values() -> Vec<Data> {
    vec![
        s("hello world"),
        Data::Int(1),
        Data::Int(225),
        s("hall\u{e5} v\u{e4}rlden"),
        s("\u{43f}\u{440}\u{438}\u{432}\u{456}\u{442} \u{441}\u{432}\u{456}\u{442}"),
        Data::List(b"hall\xe5".iter().map(|&b| Data::Int(b.into())).collect()),
    ]
}

#[test]
fn test_remote() {
    let _fork = serial();
    within(LONG, "test_remote", || {
        let manager = Manager::start().unwrap();
        manager
            .publish("get_queue", &manager.queue(0).unwrap())
            .unwrap();
        let address = manager.address().to_path_buf();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            let m = Manager::connect(&address)?;
            let q: QueueProxy = m.lookup("get_queue")?;
            q.put(Data::List(values()))?;
            Ok(())
        });
        p.start().unwrap();
        let manager2 = Manager::connect(manager.address()).unwrap();
        let queue: QueueProxy = manager2.lookup("get_queue").unwrap();
        assert_eq!(queue.get_timeout(LONG).unwrap(), Data::List(values()));
        assert_eq!(p.join().unwrap(), 0);
        // Looking it up as another kind, or a name nobody published, is refused.
        assert!(matches!(
            manager2.lookup::<ipc::DictProxy>("get_queue"),
            Err(ManagerError::WrongKind { .. })
        ));
        assert!(matches!(
            manager2.lookup::<QueueProxy>("no such"),
            Err(ManagerError::NoSuchName(_))
        ));
        drop(manager2); // a connected handle leaves the server running
        assert!(queue.is_empty().unwrap());
    });
}

#[test]
fn connecting_to_no_manager_fails_at_once() {
    let dir = std::env::temp_dir().join(format!("ipc-no-manager-{}", std::process::id()));
    assert!(Manager::connect(dir.join("socket")).is_err());
}

// TestSyncManagerTypes

#[test]
fn test_queue() {
    let _fork = serial();
    within(LONG, "test_queue", || {
        let m = Manager::start().unwrap();
        let o = m.queue(2).unwrap();
        o.put(5).unwrap();
        o.put(6).unwrap();
        assert!(matches!(
            o.put_timeout(7, Duration::from_millis(50)),
            Err(ManagerError::Full)
        ));
        let w = o.clone();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            anyhow::ensure!(w.qsize()? == 2 && w.is_full()? && !w.is_empty()?);
            anyhow::ensure!(w.get()? == Data::Int(5) && !w.is_empty()?);
            anyhow::ensure!(w.get()? == Data::Int(6) && w.is_empty()?);
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert!(o.is_empty().unwrap() && !o.is_full().unwrap());
        assert!(matches!(
            o.get_timeout(Duration::from_millis(50)),
            Err(ManagerError::Empty)
        ));
    });
}

#[test]
fn test_namespace_in_a_worker() {
    // Python's TestSyncManagerTypes.test_namespace.
    let _fork = serial();
    within(LONG, "test_namespace", || {
        let m = Manager::start().unwrap();
        let o = m.namespace().unwrap();
        o.set("x", 0).unwrap();
        o.set("y", 1).unwrap();
        let w = o.clone();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            anyhow::ensure!(w.get("x")? == Data::Int(0) && w.get("y")? == Data::Int(1));
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
    });
}

/// A `get` waiting on the manager's queue is answered when another process puts (the server
/// wakes it), not by polling on the client.
#[test]
fn a_waiting_get_is_woken_by_a_put_from_another_process() {
    let _fork = serial();
    within(LONG, "waiting get", || {
        let m = Manager::start().unwrap();
        let q = m.queue(0).unwrap();
        let w = q.clone();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            std::thread::sleep(Duration::from_millis(50));
            w.put("late")?;
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(q.get().unwrap(), s("late"));
        assert_eq!(p.join().unwrap(), 0);
    });
}

// Faults

struct Bomb;

impl Managed for Bomb {
    fn call(&mut self, _: &str, _: Vec<Data>) -> Result<Data, String> {
        panic!("boom")
    }
}

#[test]
fn a_panicking_method_is_an_error_reply_and_the_server_goes_on() {
    let _fork = serial();
    within(LONG, "panicking method", || {
        let m = Manager::builder()
            .register("Bomb", |_| Ok(Box::new(Bomb)))
            .register("Dud", |_| panic!("no"))
            .start()
            .unwrap();
        let b = m.create("Bomb", []).unwrap();
        let e = b.call("anything", []).unwrap_err();
        assert!(e.to_string().contains("panicked: boom"), "{e}");
        assert!(
            m.create("Dud", [])
                .unwrap_err()
                .to_string()
                .contains("panicked")
        );
        let d = m.dict().unwrap();
        d.set(1, 2).unwrap();
        assert_eq!(d.get(1).unwrap(), Some(Data::Int(2)));
    });
}

#[test]
fn a_client_killed_while_its_get_waits_leaves_the_queue_working() {
    let _fork = serial();
    within(LONG, "client killed in get", || {
        let m = Manager::start().unwrap();
        let q = m.queue(0).unwrap();
        let waiting = m.value(0).unwrap();
        let (w, flag) = (q.clone(), waiting.clone());
        let mut p = Process::new(move || -> anyhow::Result<()> {
            flag.set(1)?;
            w.get()?;
            Ok(())
        });
        p.start().unwrap();
        while waiting.get().unwrap() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20)); // into its get, most likely
        p.kill().unwrap();
        assert_eq!(p.join().unwrap(), -9);
        q.put(1).unwrap();
        q.put(2).unwrap();
        // The dead client's get, woken by the first put, finds its client gone and takes
        // nothing: both items are here, in order.
        assert_eq!(q.get_timeout(LONG).unwrap(), Data::Int(1));
        assert_eq!(q.get_timeout(LONG).unwrap(), Data::Int(2));
        assert_eq!(q.qsize().unwrap(), 0);
    });
}
