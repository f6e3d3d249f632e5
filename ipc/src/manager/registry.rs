//! Types of the user's that a manager serves: Python's `BaseManager.register(typeid, callable)`.

use std::fmt;
use std::sync::Arc;

use super::Data;
use super::protocol::Refusal;

/// An object the manager's server owns and calls on the clients' behalf. Replaces the class
/// given to Python's `BaseManager.register`: its public methods are Python's exposed ones,
/// here the names `call` answers to.
///
/// ```
/// use ipc::manager::Managed;
/// use ipc::Data;
///
/// #[derive(Default)]
/// struct Counter(i64);
///
/// impl Managed for Counter {
///     fn call(&mut self, method: &str, args: Vec<Data>) -> Result<Data, String> {
///         match (method, args.as_slice()) {
///             ("add", [Data::Int(n)]) => {
///                 self.0 += n;
///                 Ok(Data::Int(self.0))
///             }
///             ("get", []) => Ok(Data::Int(self.0)),
///             _ => Err(format!("Counter has no method {method}({args:?})")),
///         }
///     }
/// }
/// ```
pub trait Managed: Send {
    /// Run `method` with `args` and return its result. An error goes back to the caller as
    /// [`ManagerError::Server`](super::ManagerError::Server); a panic is caught and reported
    /// the same way (the server goes on).
    ///
    /// # Errors
    /// Whatever the type decides: an unknown method, wrong arguments.
    fn call(&mut self, method: &str, args: Vec<Data>) -> Result<Data, String>;
}

/// What makes an object of a registered type from the arguments of
/// [`Manager::create`](super::Manager::create).
pub type Factory = Arc<dyn Fn(Vec<Data>) -> Result<Box<dyn Managed>, String> + Send + Sync>;

/// The registered types: a name and a factory each.
#[derive(Clone, Default)]
pub(super) struct Registry(Vec<(String, Factory)>);

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> Refusal {
    Refusal::Method(format!(
        "{what} panicked: {}",
        lesson::panic_message(payload)
    ))
}

impl Registry {
    pub(super) fn add(&mut self, name: String, factory: Factory) {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, factory));
    }

    /// An object of type `kind` made from `args`.
    pub(super) fn make(&self, kind: &str, args: Vec<Data>) -> Result<Box<dyn Managed>, Refusal> {
        let Some((_, factory)) = self.0.iter().find(|(n, _)| n == kind) else {
            return Err(Refusal::NoSuchType(kind.to_owned()));
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(args))) {
            Ok(Ok(obj)) => Ok(obj),
            Ok(Err(e)) => Err(Refusal::Method(e)),
            Err(p) => Err(panicked(&format!("making a {kind}"), p.as_ref())),
        }
    }
}

/// Call `method` on `obj`, a panic caught as an error.
pub(super) fn call(obj: &mut dyn Managed, method: &str, args: Vec<Data>) -> Result<Data, Refusal> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| obj.call(method, args))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Refusal::Method(e)),
        Err(p) => Err(panicked(method, p.as_ref())),
    }
}
