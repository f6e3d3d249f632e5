//! gevent's pool tests of failures (`gevent/tests/test__pool.py`: TestErrorInIterator,
//! TestErrorInHandler) on the hub's `Pool`, each named after its original; the rest of that
//! file is in `gevent_pool.rs`. A Python exception is a panic here.

#![allow(non_snake_case)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use coroutines::hub::{self, Pool};
use lesson::within;

fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    within(Duration::from_secs(60), name, f)
}

mod TestErrorInIterator {
    use super::*;

    /// The items' iterator fails (here: panics) after two items: map and imap_unordered fail.
    fn error_iter() -> impl Iterator<Item = u32> {
        let mut n = 0;
        std::iter::from_fn(move || {
            n += 1;
            assert!(n <= 2, "ExpectedException");
            Some(n)
        })
    }

    #[test]
    fn test() {
        bounded("map", || {
            let p = Pool::new(3);
            let r = catch_unwind(AssertUnwindSafe(|| p.map(|_| (), error_iter())));
            assert!(r.is_err());
            hub::sleep(Duration::from_millis(1)).unwrap();
        });
    }

    #[test]
    fn test_unordered() {
        bounded("imap_unordered", || {
            let p = Pool::new(3);
            let r = catch_unwind(AssertUnwindSafe(|| {
                p.imap_unordered(|_| (), error_iter()).count()
            }));
            assert!(r.is_err());
            hub::sleep(Duration::from_millis(1)).unwrap();
        });
    }
}

mod TestErrorInHandler {
    use super::*;

    /// gevent's `divide_by(x)`: `1.0 / x`, failing on 0 (here: a panic).
    fn divide_by(x: u32) -> f64 {
        assert!(x != 0, "ZeroDivisionError");
        1.0 / f64::from(x)
    }

    #[test]
    fn test_map() {
        bounded("map", || {
            let r = Pool::new(3).map(divide_by, [1, 0, 2]);
            assert!(
                matches!(&r, Err(e) if e.message() == "ZeroDivisionError"),
                "{r:?}"
            );
        });
    }

    /// Pool(1): 1.0, then the failure, then 0.5, then the end.
    #[test]
    fn test_imap_unordered() {
        bounded("imap_unordered", || {
            let p = Pool::new(1);
            let mut it = p.imap_unordered(divide_by, [1, 0, 2]);
            assert_eq!(it.next().unwrap().unwrap(), 1.0);
            let e = it.next().unwrap().unwrap_err();
            assert_eq!(e.message(), "ZeroDivisionError");
            assert_eq!(it.next().unwrap().unwrap(), 0.5);
            assert!(it.next().is_none());
        });
    }
}
