//! Lesson `manager-served` (beyond the seed: the rest of Python's `Manager`): a `Namespace`, a
//! `Queue` the manager serves and an object of a type registered by the program, reached by a
//! child started with spawn, which inherits nothing and connects to the manager by its
//! address.

use anyhow::{Context, ensure};
use lesson::{Activity, Cx, Handoff};
use processes::Process;
use serde::{Deserialize, Serialize};

use crate::manager::Managed;
use crate::{Data, Manager, NamespaceProxy, ObjectProxy, QueueProxy};

/// The jobs the parent puts: the child adds up their squares.
pub const JOBS: [i64; 4] = [1, 2, 3, 4];

/// A running total, the registered type (Python: `MyManager.register('Tally', Tally)`).
#[derive(Debug, Default)]
pub struct Tally(i64);

impl Managed for Tally {
    fn call(&mut self, method: &str, args: Vec<Data>) -> Result<Data, String> {
        match (method, args.as_slice()) {
            ("add", [Data::Int(n)]) => {
                self.0 = self.0.checked_add(*n).ok_or("the tally overflowed")?;
                Ok(Data::Int(self.0))
            }
            ("total", []) => Ok(Data::Int(self.0)),
            _ => Err(format!("Tally has no method {method} for {args:?}")),
        }
    }
}

/// What the spawned client is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientArg {
    /// The manager's address.
    pub address: std::path::PathBuf,
    /// The parent's lesson context.
    pub handoff: Handoff,
}

/// The spawn entry `manager-client`: connect by address, take jobs until "stop", add each
/// square to the tally, note the last job in the namespace.
pub fn client(arg: &[u8]) -> anyhow::Result<()> {
    let arg: ClientArg = processes::decode(arg)?;
    let cx = arg.handoff.cx();
    let m = Manager::connect(&arg.address)?;
    let jobs: QueueProxy = m.lookup("jobs")?;
    let status: NamespaceProxy = m.lookup("status")?;
    let tally: ObjectProxy = m.lookup("tally")?;
    cx.say(format!(
        "client: connected to {} and looked up jobs, status, tally",
        arg.address.display()
    ));
    loop {
        let job = {
            let _waiting = cx.span(Activity::Wait, "jobs.get()");
            jobs.get()?
        };
        let Data::Int(n) = job else {
            cx.say(format!("client: got {job}: no more jobs"));
            return Ok(());
        };
        let total = tally.call("add", [Data::Int(n * n)])?;
        status.set("last", n)?;
        cx.say(format!("client: job {n}: tally.add({}) -> {total}", n * n));
    }
}

/// The parent's side: the manager, its three objects, the spawned client. The tally's total
/// and the namespace's `last` afterwards.
pub fn served_to_a_spawned_client(cx: &Cx) -> anyhow::Result<(Data, Data)> {
    processes::register(super::ENTRIES);
    let m = Manager::builder()
        .register("Tally", |_| Ok(Box::new(Tally::default())))
        .start()?;
    let jobs = m.queue(0)?;
    let status = m.namespace()?;
    let tally = m.create("Tally", [])?;
    m.publish("jobs", &jobs)?;
    m.publish("status", &status)?;
    m.publish("tally", &tally)?;
    cx.say(format!(
        "parent: the manager listens at {}; published jobs, status, tally",
        m.address().display()
    ));
    let arg = ClientArg {
        address: m.address().to_path_buf(),
        handoff: cx.handoff().named("Process-1"),
    };
    let mut p = Process::spawn_entry("manager-client", &arg)?.named("Process-1");
    if let Some(exe) = cx.exe() {
        p = p.exe(exe);
    }
    p.start().context("spawning the client")?;
    for n in JOBS {
        jobs.put(n)?;
    }
    jobs.put("stop")?;
    cx.say("parent: put jobs 1, 2, 3, 4 and \"stop\"");
    let code = {
        let _waiting = cx.span(Activity::Wait, "join(): the client");
        ensure!(p.join_timeout(cx.long_wait())?, "the client never ended");
        p.join()?
    };
    ensure!(code == 0, "the client failed (exitcode {code})");
    let total = tally.call("total", [])?;
    let last = status.get("last")?;
    cx.say(format!(
        "parent: tally.total() -> {total}; status.last -> {last}"
    ));
    Ok((total, last))
}

/// The lesson.
pub fn run(cx: &Cx) -> anyhow::Result<()> {
    cx.explain(
        "Python's manager serves more than dict and list: Namespace(), Queue(), and types the\n\
         program registers (BaseManager.register). A process that inherited nothing reaches it\n\
         by address: Manager::connect here, where Python checks an authkey; here the socket\n\
         sits in a directory only its user may enter, and the server refuses other users.",
    );
    let (total, last) = served_to_a_spawned_client(cx)?;
    let want: i64 = JOBS.iter().map(|n| n * n).sum();
    ensure!(total == Data::Int(want), "tally {total}, wanted {want}");
    ensure!(last == Data::Int(4), "last {last}");
    Ok(())
}
