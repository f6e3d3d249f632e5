//! CPython 3.11's `_TestLock`, `_TestValue` and `_TestArray` (`Lib/test/_test_multiprocessing.py`),
//! ported to `ipc::Lock`, `ipc::Value`, `ipc::AtomicValue` and `ipc::Array`; each test is
//! named after its original. What is not ported, and why, is in the chapter README's
//! conformance table.

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering::SeqCst};
use std::time::Duration;

use ipc::{Array, AtomicValue, Lock, Value};
use lesson::within;
use processes::Process;

const LONG: Duration = Duration::from_secs(60);

static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

// _TestLock

#[test]
fn test_lock() {
    let lock = Lock::new().unwrap();
    let held = lock.acquire().unwrap(); // acquire() -> True
    assert!(lock.try_acquire().unwrap().is_none()); // acquire(False) -> False
    drop(held); // release() -> None
    // A second release (Python's ValueError) cannot be written: the guard is gone.
    assert!(lock.try_acquire().unwrap().is_some());
}

#[test]
fn test_lock_context() {
    let lock = Lock::new().unwrap();
    {
        let _with = lock.acquire().unwrap();
    }
    assert!(lock.try_acquire().unwrap().is_some());
}

// _TestValue

/// Python's `codes_values`: ('i', 4343, 24234), ('d', 3.625, -4.25), ('h', -232, 234),
/// ('q', 2**33, 2**34), ('c', b'x', b'y').
#[test]
fn test_value() {
    let _fork = serial();
    within(LONG, "test_value", || {
        let i = Value::new(4343i32).unwrap();
        let d = Value::new(3.625f64).unwrap();
        let h = Value::new(-232i16).unwrap();
        let q = Value::new(1i64 << 33).unwrap();
        let c = Value::new(b'x').unwrap();
        assert_eq!(
            (i.get().unwrap(), d.get().unwrap(), h.get().unwrap()),
            (4343, 3.625, -232)
        );
        assert_eq!((q.get().unwrap(), c.get().unwrap()), (1 << 33, b'x'));
        let (ci, cd, ch, cq, cc) = (i.clone(), d.clone(), h.clone(), q.clone(), c.clone());
        let mut proc = Process::new(move || -> anyhow::Result<()> {
            ci.set(24234)?;
            cd.set(-4.25)?;
            ch.set(234)?;
            cq.set(1 << 34)?;
            cc.set(b'y')?;
            Ok(())
        });
        proc.start().unwrap();
        assert_eq!(proc.join().unwrap(), 0);
        assert_eq!(
            (i.get().unwrap(), d.get().unwrap(), h.get().unwrap()),
            (24234, -4.25, 234)
        );
        assert_eq!((q.get().unwrap(), c.get().unwrap()), (1 << 34, b'y'));
    });
}

#[test]
fn test_rawvalue() {
    // RawValue (no lock) is an AtomicValue here: integers only (there is no atomic f64 or
    // character), so the 'i' and 'q' codes.
    let _fork = serial();
    within(LONG, "test_rawvalue", || {
        let i = AtomicValue::new(AtomicI32::new(4343)).unwrap();
        let q = AtomicValue::new(AtomicI64::new(1 << 33)).unwrap();
        let (ci, cq) = (i.clone(), q.clone());
        let mut proc = Process::new(move || {
            ci.store(24234, SeqCst);
            cq.store(1 << 34, SeqCst);
        });
        proc.start().unwrap();
        assert_eq!(proc.join().unwrap(), 0);
        assert_eq!((i.load(SeqCst), q.load(SeqCst)), (24234, 1 << 34));
    });
}

/// `get_obj` has no meaning here (the value is reached through its guard). `lock=False` and
/// `RawValue` are `AtomicValue`, which has no `get_lock` (a compile-time fact, as Python's
/// `AttributeError` is a run-time one); a lock that is not a lock (`lock='navalue'`) does not
/// compile.
#[test]
fn test_getobj_getlock() {
    let val1 = Value::new(5i32).unwrap();
    let lock1 = val1.get_lock().clone();
    assert_eq!(val1.get_lock(), &lock1);
    let lock = Lock::new().unwrap();
    let val3 = Value::with_lock(5i32, lock.clone()).unwrap();
    assert_eq!(val3.get_lock(), &lock);
    assert_ne!(val1.get_lock(), &lock);
    // Python's `with val3.get_lock(): val3.value += 1`.
    let mut g = val3.get_lock().acquire().unwrap();
    *val3.get_mut(&mut g) += 1;
    drop(g);
    assert_eq!(val3.get().unwrap(), 6);
    let _raw: ipc::RawValue<AtomicI32> = AtomicValue::new(AtomicI32::new(5)).unwrap();
}

// _TestArray

/// Python's `f`: prefix sums in place.
fn f(seq: &mut [i32]) {
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
}

#[test]
fn test_array() {
    let _fork = serial();
    within(LONG, "test_array", || {
        let mut seq = vec![680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
        let arr = Array::from_slice(&seq).unwrap();
        assert_eq!(arr.len(), seq.len());
        assert_eq!(arr.lock().unwrap()[3], seq[3]);
        assert_eq!(&arr.lock().unwrap()[2..7], &seq[2..7]);
        arr.lock().unwrap()[4..8].copy_from_slice(&[1, 2, 3, 4]);
        seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(&*arr.lock().unwrap(), &seq[..]);
        f(&mut seq);
        let child = arr.clone();
        let mut p = Process::new(move || -> anyhow::Result<()> {
            f(&mut child.lock()?);
            Ok(())
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        assert_eq!(&*arr.lock().unwrap(), &seq[..]);
    });
}

/// Python's `test_array(raw=True)`: the elements are atomics, prefix-summed in a child.
#[test]
fn test_rawarray() {
    let _fork = serial();
    within(LONG, "test_rawarray", || {
        let seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
        let arr = ipc::RawArray::from_fn(seq.len(), |i| AtomicI32::new(seq[i])).unwrap();
        assert_eq!(arr.len(), seq.len());
        assert_eq!(arr[3].load(SeqCst), seq[3]);
        let child = arr.clone();
        let mut p = Process::new(move || {
            for i in 1..child.len() {
                child[i].fetch_add(child[i - 1].load(SeqCst), SeqCst);
            }
        });
        p.start().unwrap();
        assert_eq!(p.join().unwrap(), 0);
        let mut sums = seq.to_vec();
        f(&mut sums);
        let got: Vec<i32> = arr.iter().map(|x| x.load(SeqCst)).collect();
        assert_eq!(got, sums);
    });
}

/// As `test_getobj_getlock`, for arrays; several arrays may share one lock.
#[test]
fn test_getobj_getlock_obj() {
    let arr1 = Array::from_slice(&(0..10).collect::<Vec<i32>>()).unwrap();
    assert_eq!(arr1.get_lock(), &arr1.get_lock().clone());
    let lock = Lock::new().unwrap();
    let arr3 = Array::with_lock(10, 0i32, lock.clone()).unwrap();
    let arr4 = Array::with_lock(3, 1i32, lock.clone()).unwrap();
    assert_eq!(arr3.get_lock(), &lock);
    assert_eq!(arr4.get_lock(), &lock);
    let mut g = lock.acquire().unwrap();
    arr3.get_mut(&mut g)[0] = arr4.get_mut(&mut g).iter().sum();
    drop(g);
    assert_eq!(arr3.lock().unwrap()[0], 3);
    let _raw = ipc::RawArray::<AtomicI32>::zeroed(10).unwrap();
}

#[test]
#[should_panic(expected = "the guard holds another lock")]
fn get_mut_refuses_a_guard_of_another_lock() {
    let v = Value::new(1u8).unwrap();
    let other = Lock::new().unwrap();
    let mut g = other.acquire().unwrap();
    let _ = v.get_mut(&mut g);
}

#[test]
fn test_array_from_size() {
    let size = 10;
    // Zeroed every time (issue #11675), even where earlier arrays were.
    for _ in 0..3 {
        let arr = Array::new(size, 0i32).unwrap();
        assert_eq!(arr.len(), size);
        assert_eq!(&*arr.lock().unwrap(), &[0; 10]);
        let mut g = arr.lock().unwrap();
        for (i, x) in g.iter_mut().enumerate() {
            *x = i as i32;
        }
        assert_eq!(&*g, &(0..10).collect::<Vec<i32>>()[..]);
    }
}
