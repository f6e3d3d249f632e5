//! CPython's `concurrent.futures` test functions as one task type for a
//! `ProcessPoolExecutor`: `pow`, `mul`, `divmod`, `abs`, `os.getpid`, a call that waits at
//! the probe's gate, one that raises, one that crashes its worker (`_crash`: here SIGKILL),
//! one that exits it (`_exit`), and results that crash, exit or fail while being encoded or
//! decoded (`CrashAtPickle`, `ExitAtPickle`, `ErrorAtUnpickle`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::probe;

fn kill_self() -> ! {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    unreachable!("SIGKILL cannot be caught")
}

/// A call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Calc {
    Pow(i64, u32),
    Mul(i64, i64),
    DivMod(i64, i64),
    Abs(i64),
    Pid,
    /// Waits at the gate, then `None`.
    Block,
    /// `RuntimeError(123)`.
    Raise,
    /// Kills its worker (CPython's `_crash`, a segfault).
    Crash,
    /// Exits its worker with code 1 (CPython's `_exit`, `sys.exit(1)`).
    Exit,
    /// Returns a value whose encoding kills the worker.
    CrashAtPickle,
    /// Returns a value whose encoding exits the worker.
    ExitAtPickle,
    /// Returns a value the parent cannot decode.
    ErrorAtUnpickle,
}

/// What a [`Calc`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum V {
    I(i64),
    Pair(i64, i64),
    None,
    Crash(CrashOnEncode),
    Exit(ExitOnEncode),
    Undecodable(FailOnDecode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashOnEncode;

impl Serialize for CrashOnEncode {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        kill_self()
    }
}

impl<'de> Deserialize<'de> for CrashOnEncode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| CrashOnEncode)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitOnEncode;

impl Serialize for ExitOnEncode {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        std::process::exit(1)
    }
}

impl<'de> Deserialize<'de> for ExitOnEncode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| ExitOnEncode)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOnDecode;

impl Serialize for FailOnDecode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FailOnDecode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Err(serde::de::Error::custom("UnpicklingError"))
    }
}

impl pool::Task for Calc {
    type Output = V;
    fn run(self) -> anyhow::Result<V> {
        Ok(match self {
            Calc::Pow(a, b) => V::I(a.pow(b)),
            Calc::Mul(a, b) => V::I(a * b),
            Calc::DivMod(a, b) => {
                anyhow::ensure!(
                    b != 0,
                    "ZeroDivisionError: integer division or modulo by zero"
                );
                V::Pair(a.div_euclid(b), a.rem_euclid(b))
            }
            Calc::Abs(a) => V::I(a.abs()),
            Calc::Pid => V::I(i64::from(std::process::id())),
            Calc::Block => {
                probe().hold();
                V::None
            }
            Calc::Raise => anyhow::bail!("RuntimeError(123)"),
            Calc::Crash => kill_self(),
            Calc::Exit => std::process::exit(1),
            Calc::CrashAtPickle => V::Crash(CrashOnEncode),
            Calc::ExitAtPickle => V::Exit(ExitOnEncode),
            Calc::ErrorAtUnpickle => V::Undecodable(FailOnDecode),
        })
    }
}
