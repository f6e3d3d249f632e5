//! The sink: the anonymous in-memory file that a lesson's other processes append their records
//! to, one line each (see the `cx` module docs).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Activity, Kind, Record};

/// The file other processes append their records to (see the module docs).
#[derive(Debug)]
pub(super) struct Sink {
    pub(super) file: File,
    /// Where a process started afresh finds it: `/proc/<root pid>/fd/<n>`.
    pub(super) path: Option<PathBuf>,
}

impl Sink {
    /// A new anonymous sink for records of the processes of a lesson started in this process.
    /// `None` where memfd is unavailable: the children's records are then not kept.
    pub(super) fn create() -> Option<Arc<Sink>> {
        use std::os::fd::AsRawFd;
        let fd =
            nix::sys::memfd::memfd_create("lesson-records", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .ok()?;
        let file = File::from(fd);
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        // Forked children share this open file description: O_APPEND makes each record's single
        // write land whole at the end, whoever writes.
        let flags = nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_APPEND;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags)).ok()?;
        Some(Arc::new(Sink {
            file,
            path: Some(path),
        }))
    }

    /// The sink of a root process, opened again by path from a process started afresh.
    pub(super) fn open(path: &std::path::Path) -> Option<Arc<Sink>> {
        let file = std::fs::OpenOptions::new().append(true).open(path).ok()?;
        Some(Arc::new(Sink {
            file,
            path: Some(path.to_owned()),
        }))
    }

    pub(super) fn append(&self, r: &Record) {
        let line = encode(r);
        // One write per record: with O_APPEND it lands whole. A full disk or a gone parent
        // loses the record, never the lesson.
        let _ = (&self.file).write_all(line.as_bytes());
    }

    pub(super) fn read(&self) -> Vec<Record> {
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.file.read_at(&mut buf, bytes.len() as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(decode)
            .collect()
    }
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// One record as one line: at, pid, cpu, kind, until, speaker, text (tab-separated).
fn encode(r: &Record) -> String {
    let (kind, until) = match r.kind {
        Kind::Said => ("-".to_owned(), 0),
        Kind::Span { until, activity } => (activity.code().to_string(), until.as_nanos()),
    };
    let cpu = r.cpu.map_or("-".to_owned(), |c| c.to_string());
    format!(
        "{}\t{}\t{cpu}\t{kind}\t{until}\t{}\t{}\n",
        r.at.as_nanos(),
        r.pid,
        escape(&r.speaker),
        escape(&r.text)
    )
}

fn decode(line: &str) -> Option<Record> {
    let mut f = line.splitn(7, '\t');
    let nanos = |s: &str| s.parse::<u64>().ok().map(Duration::from_nanos);
    let at = nanos(f.next()?)?;
    let pid = f.next()?.parse().ok()?;
    let cpu = f.next()?.parse().ok();
    let kind = f.next()?;
    let until = nanos(f.next()?)?;
    let speaker = unescape(f.next()?);
    let text = unescape(f.next()?);
    let kind = match kind {
        "-" => Kind::Said,
        code => Kind::Span {
            until,
            activity: Activity::from_code(code)?,
        },
    };
    Some(Record {
        at,
        speaker,
        text,
        kind,
        cpu,
        pid,
    })
}
