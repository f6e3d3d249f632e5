//! What the server owns, and how it answers each request. Pure logic, no I/O: every request
//! gets a [`Response`], and nothing a client sends can make it panic (arithmetic is checked,
//! indices are checked, stored data is bounded in depth).

use std::collections::{BTreeMap, VecDeque};

use super::Data;
use super::protocol::{Refusal, Request, Response};
use super::registry::{Managed, Registry};

enum Object {
    Dict(BTreeMap<Data, Data>),
    List(Vec<Data>),
    Value(i64),
    Namespace(BTreeMap<String, Data>),
    Queue { items: VecDeque<Data>, max: usize },
    Custom { kind: String, obj: Box<dyn Managed> },
}

impl Object {
    fn kind(&self) -> &str {
        match self {
            Object::Dict(_) => "dict",
            Object::List(_) => "list",
            Object::Value(_) => "value",
            Object::Namespace(_) => "namespace",
            Object::Queue { .. } => "queue",
            Object::Custom { kind, .. } => kind,
        }
    }
}

/// Every object the server owns; a proxy names one by its index. Objects live as long as the
/// server (Python's manager counts proxies and frees an object when the last one goes).
#[derive(Default)]
pub(super) struct Objects {
    all: Vec<Object>,
    /// Published names (`Manager::publish`).
    names: BTreeMap<String, u32>,
    registry: Registry,
}

fn missing(id: u32, kind: &str) -> Response {
    Response::Refused(Refusal::NoSuchObject {
        id,
        kind: kind.to_owned(),
    })
}

/// `None` if `data` nests deeper than a manager may hold.
fn too_deep<'a>(data: impl IntoIterator<Item = &'a Data>) -> Option<Response> {
    let depth = data.into_iter().map(Data::depth).max().unwrap_or(0);
    (depth > Data::MAX_DEPTH).then_some(Response::Refused(Refusal::TooDeep {
        depth: depth as u64,
        limit: Data::MAX_DEPTH as u64,
    }))
}

/// Python's index rules: a negative index counts from the end.
fn index(i: i64, len: usize) -> Result<usize, Response> {
    let at = if i < 0 {
        i.checked_add(len as i64)
    } else {
        Some(i)
    };
    match at {
        Some(at) if at >= 0 && (at as usize) < len => Ok(at as usize),
        _ => Err(Response::Refused(Refusal::IndexOutOfRange {
            index: i,
            len: len as u64,
        })),
    }
}

/// Python's slice rules for `l[start:end]`: negative counts from the end, then clamped.
fn slice(start: Option<i64>, end: Option<i64>, len: usize) -> std::ops::Range<usize> {
    let at = |i: i64| -> usize {
        let i = if i < 0 {
            i.saturating_add(len as i64)
        } else {
            i
        };
        i.clamp(0, len as i64) as usize
    };
    let s = start.map_or(0, at);
    let e = end.map_or(len, at);
    s..e.max(s)
}

impl Objects {
    /// A store whose registered types are `registry`'s.
    pub(super) fn with_registry(registry: Registry) -> Objects {
        Objects {
            registry,
            ..Objects::default()
        }
    }

    fn new_object(&mut self, o: Object) -> Response {
        self.all.push(o);
        Response::Created((self.all.len() - 1) as u32)
    }

    fn namespace(&mut self, id: u32) -> Result<&mut BTreeMap<String, Data>, Response> {
        match self.all.get_mut(id as usize) {
            Some(Object::Namespace(n)) => Ok(n),
            _ => Err(missing(id, "namespace")),
        }
    }

    fn queue(&mut self, id: u32) -> Result<(&mut VecDeque<Data>, usize), Response> {
        match self.all.get_mut(id as usize) {
            Some(Object::Queue { items, max }) => Ok((items, *max)),
            _ => Err(missing(id, "queue")),
        }
    }

    /// Put `item` back at the front of queue `id` (a `get` whose reply could not be sent).
    pub(super) fn put_back(&mut self, id: u32, item: Data) {
        if let Ok((items, _)) = self.queue(id) {
            items.push_front(item);
        }
    }

    fn dict(&mut self, id: u32) -> Result<&mut BTreeMap<Data, Data>, Response> {
        match self.all.get_mut(id as usize) {
            Some(Object::Dict(d)) => Ok(d),
            _ => Err(missing(id, "dict")),
        }
    }

    fn list(&mut self, id: u32) -> Result<&mut Vec<Data>, Response> {
        match self.all.get_mut(id as usize) {
            Some(Object::List(l)) => Ok(l),
            _ => Err(missing(id, "list")),
        }
    }

    fn value(&mut self, id: u32) -> Result<&mut i64, Response> {
        match self.all.get_mut(id as usize) {
            Some(Object::Value(v)) => Ok(v),
            _ => Err(missing(id, "value")),
        }
    }

    /// Answer one request.
    pub(super) fn handle(&mut self, req: Request) -> Response {
        self.answer(req).unwrap_or_else(|refused| refused)
    }

    fn answer(&mut self, req: Request) -> Result<Response, Response> {
        Ok(match req {
            Request::NewDict => self.new_object(Object::Dict(BTreeMap::new())),
            Request::NewDictFrom(items) => {
                if let Some(r) = too_deep(items.iter().flat_map(|(k, v)| [k, v])) {
                    return Err(r);
                }
                self.new_object(Object::Dict(items.into_iter().collect()))
            }
            Request::NewList(items) => {
                if let Some(r) = too_deep(&items) {
                    return Err(r);
                }
                self.new_object(Object::List(items))
            }
            Request::NewValue(v) => self.new_object(Object::Value(v)),
            Request::DictSet(id, k, v) => {
                if let Some(r) = too_deep([&k, &v]) {
                    return Err(r);
                }
                self.dict(id)?.insert(k, v);
                Response::Done
            }
            Request::DictGet(id, k) => Response::Got(self.dict(id)?.get(&k).cloned()),
            Request::DictDel(id, k) => Response::Got(self.dict(id)?.remove(&k)),
            Request::DictLen(id) => Response::Len(self.dict(id)?.len() as u64),
            Request::DictClear(id) => {
                self.dict(id)?.clear();
                Response::Done
            }
            Request::DictItems(id) => Response::Items(
                self.dict(id)?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            Request::ListAppend(id, v) => {
                if let Some(r) = too_deep([&v]) {
                    return Err(r);
                }
                self.list(id)?.push(v);
                Response::Done
            }
            Request::ListExtend(id, items) => {
                if let Some(r) = too_deep(&items) {
                    return Err(r);
                }
                self.list(id)?.extend(items);
                Response::Done
            }
            Request::ListItems(id) => Response::List(self.list(id)?.clone()),
            Request::ListGet(id, i) => {
                let l = self.list(id)?;
                Response::Got(Some(l[index(i, l.len())?].clone()))
            }
            Request::ListSet(id, i, v) => {
                if let Some(r) = too_deep([&v]) {
                    return Err(r);
                }
                let l = self.list(id)?;
                let at = index(i, l.len())?;
                l[at] = v;
                Response::Done
            }
            Request::ListLen(id) => Response::Len(self.list(id)?.len() as u64),
            Request::ListPop(id, i) => {
                let l = self.list(id)?;
                let at = index(i.unwrap_or(-1), l.len())?;
                Response::Got(Some(l.remove(at)))
            }
            Request::ListSlice(id, start, end) => {
                let l = self.list(id)?;
                Response::List(l[slice(start, end, l.len())].to_vec())
            }
            Request::ValueAdd(id, delta) => {
                let v = self.value(id)?;
                // Python's int would grow; this one is a C-style 64-bit integer, like a
                // `multiprocessing.Value('q')`, except that leaving its range is an error
                // (the value unchanged) instead of a silent wrap.
                *v = v
                    .checked_add(delta)
                    .ok_or(Response::Refused(Refusal::Overflow { value: *v, delta }))?;
                Response::Int(*v)
            }
            Request::ValueGet(id) => Response::Int(*self.value(id)?),
            Request::ValueSet(id, x) => {
                *self.value(id)? = x;
                Response::Done
            }
            other => self.answer_more(other)?,
        })
    }

    /// The requests added after the first twenty-one: namespaces, queues, registered types and
    /// published names.
    fn answer_more(&mut self, req: Request) -> Result<Response, Response> {
        let refuse = |r: Refusal| Response::Refused(r);
        Ok(match req {
            Request::NewNamespace => self.new_object(Object::Namespace(BTreeMap::new())),
            Request::NsSet(id, attr, v) => {
                if let Some(r) = too_deep([&v]) {
                    return Err(r);
                }
                self.namespace(id)?.insert(attr, v);
                Response::Done
            }
            Request::NsGet(id, attr) => match self.namespace(id)?.get(&attr) {
                Some(v) => Response::Got(Some(v.clone())),
                None => return Err(refuse(Refusal::NoSuchAttribute(attr))),
            },
            Request::NsDel(id, attr) => match self.namespace(id)?.remove(&attr) {
                Some(v) => Response::Got(Some(v)),
                None => return Err(refuse(Refusal::NoSuchAttribute(attr))),
            },
            Request::NsItems(id) => Response::Names(
                self.namespace(id)?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            Request::NewQueue(max) => self.new_object(Object::Queue {
                items: VecDeque::new(),
                max: usize::try_from(max).unwrap_or(usize::MAX),
            }),
            Request::QueuePut(id, v, _) => {
                if let Some(r) = too_deep([&v]) {
                    return Err(r);
                }
                let (items, max) = self.queue(id)?;
                if max > 0 && items.len() >= max {
                    return Err(refuse(Refusal::Full));
                }
                items.push_back(v);
                Response::Done
            }
            Request::QueueGet(id, _) => match self.queue(id)?.0.pop_front() {
                Some(v) => Response::Got(Some(v)),
                None => return Err(refuse(Refusal::Empty)),
            },
            Request::QueueSize(id) => Response::Len(self.queue(id)?.0.len() as u64),
            Request::QueueFull(id) => {
                let (items, max) = self.queue(id)?;
                Response::Bool(max > 0 && items.len() >= max)
            }
            Request::NewObject(kind, args) => {
                if let Some(r) = too_deep(&args) {
                    return Err(r);
                }
                let obj = self.registry.make(&kind, args).map_err(refuse)?;
                self.new_object(Object::Custom { kind, obj })
            }
            Request::Call(id, method, args) => {
                if let Some(r) = too_deep(&args) {
                    return Err(r);
                }
                let Some(Object::Custom { obj, .. }) = self.all.get_mut(id as usize) else {
                    return Err(missing(id, "registered object"));
                };
                let out = super::registry::call(obj.as_mut(), &method, args).map_err(refuse)?;
                if let Some(r) = too_deep([&out]) {
                    return Err(r);
                }
                Response::Got(Some(out))
            }
            Request::Publish(name, id) => {
                if self.all.get(id as usize).is_none() {
                    return Err(missing(id, "object"));
                }
                if self.names.contains_key(&name) {
                    return Err(refuse(Refusal::NameTaken(name)));
                }
                self.names.insert(name, id);
                Response::Done
            }
            Request::Lookup(name) => match self.names.get(&name) {
                Some(&id) => {
                    let kind = self.all[id as usize].kind().to_owned();
                    Response::Found(id, kind)
                }
                None => return Err(refuse(Refusal::NoSuchName(name))),
            },
            // The first twenty-one are answered by `answer`.
            _ => return Err(refuse(Refusal::Malformed("unexpected request".to_owned()))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_indices_follow_python() {
        assert_eq!(slice(Some(2), Some(10), 5), 2..5);
        assert_eq!(slice(None, None, 5), 0..5);
        assert_eq!(slice(Some(-2), None, 5), 3..5);
        assert_eq!(slice(Some(4), Some(1), 5), 4..4);
        assert_eq!(slice(Some(i64::MIN), Some(i64::MAX), 5), 0..5);
        assert_eq!(index(-1, 3).ok(), Some(2));
        assert!(index(3, 3).is_err());
        assert!(index(-4, 3).is_err());
        assert!(index(i64::MIN, 3).is_err());
        assert!(index(0, 0).is_err());
    }

    #[test]
    fn no_request_panics_the_store() {
        let mut o = Objects::default();
        assert!(matches!(
            o.handle(Request::NewValue(i64::MAX)),
            Response::Created(0)
        ));
        assert!(matches!(
            o.handle(Request::ValueAdd(0, 1)),
            Response::Refused(Refusal::Overflow {
                value: i64::MAX,
                delta: 1
            })
        ));
        assert!(matches!(
            o.handle(Request::ValueGet(0)),
            Response::Int(i64::MAX)
        ));
        assert!(matches!(
            o.handle(Request::ListGet(0, 0)),
            Response::Refused(_)
        ));
        assert!(matches!(
            o.handle(Request::ListPop(9, None)),
            Response::Refused(_)
        ));
        assert!(matches!(
            o.handle(Request::NewList(vec![])),
            Response::Created(1)
        ));
        assert!(matches!(
            o.handle(Request::ListPop(1, None)),
            Response::Refused(_)
        ));
        let mut deep = Data::Int(0);
        for _ in 0..=Data::MAX_DEPTH {
            deep = Data::List(vec![deep]);
        }
        assert!(matches!(
            o.handle(Request::ListAppend(1, deep)),
            Response::Refused(Refusal::TooDeep { .. })
        ));
        assert!(matches!(o.handle(Request::ListLen(1)), Response::Len(0)));
    }

    #[test]
    fn namespaces_queues_and_names_refuse_what_python_does() {
        let mut o = Objects::default();
        assert!(matches!(
            o.handle(Request::NewNamespace),
            Response::Created(0)
        ));
        assert!(matches!(
            o.handle(Request::NsGet(0, "job".into())),
            Response::Refused(Refusal::NoSuchAttribute(_))
        ));
        assert!(matches!(
            o.handle(Request::NewQueue(1)),
            Response::Created(1)
        ));
        assert!(matches!(
            o.handle(Request::QueueGet(1, 0)),
            Response::Refused(Refusal::Empty)
        ));
        assert!(matches!(
            o.handle(Request::QueuePut(1, Data::Int(1), 0)),
            Response::Done
        ));
        assert!(matches!(
            o.handle(Request::QueuePut(1, Data::Int(2), 0)),
            Response::Refused(Refusal::Full)
        ));
        assert!(matches!(
            o.handle(Request::QueueGet(0, 0)),
            Response::Refused(Refusal::NoSuchObject { .. })
        ));
        assert!(matches!(
            o.handle(Request::NewObject("Nope".into(), vec![])),
            Response::Refused(Refusal::NoSuchType(_))
        ));
        assert!(matches!(
            o.handle(Request::Publish("q".into(), 1)),
            Response::Done
        ));
        assert!(matches!(
            o.handle(Request::Publish("q".into(), 0)),
            Response::Refused(Refusal::NameTaken(_))
        ));
        assert!(matches!(
            o.handle(Request::Lookup("q".into())),
            Response::Found(1, ref k) if k == "queue"
        ));
        assert!(matches!(
            o.handle(Request::Call(1, "m".into(), vec![])),
            Response::Refused(Refusal::NoSuchObject { .. })
        ));
    }
}
