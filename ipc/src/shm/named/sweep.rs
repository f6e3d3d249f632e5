//! Leaving nothing in `/dev/shm`: the names a process created are unlinked at its exit (an
//! `atexit` handler, as Python's resource tracker does at shutdown), and before a process
//! creates a block it sweeps away the blocks of this crate whose creator is dead (killed, so
//! no handler ran).

use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, Once};

use nix::sys::mman::shm_unlink;

use super::{HEADER, MAGIC, path};
use crate::procid::ProcId;

/// The names this process created and has not unlinked, unlinked at exit.
pub(super) static CREATED: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
pub(super) static AT_EXIT: Once = Once::new();

pub(super) extern "C" fn unlink_created() {
    // At exit another thread may hold the list: then leave it to the next sweep.
    let Ok(list) = CREATED.try_lock() else { return };
    let me = std::process::id() as i32;
    for (pid, name) in list.iter() {
        if *pid == me {
            let _ = shm_unlink(path(name).as_str());
        }
    }
}

/// Unlink every block of this crate in `/dev/shm` whose creator is dead (each process does so
/// before it creates one). Blocks of others (no
/// magic), of other users, or still being made (no magic yet) are left alone.
pub(crate) fn sweep_stale() -> usize {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut removed = 0;
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.uid() != me || meta.len() < HEADER as u64 {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(creator) = creator_of(&entry.path()) else {
            continue;
        };
        if !creator.alive() && shm_unlink(path(&name).as_str()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The creator recorded in the header of the file at `p`, if it is one of our blocks.
fn creator_of(p: &std::path::Path) -> Option<ProcId> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(p).ok()?;
    let mut h = [0u8; 24];
    f.read_exact_at(&mut h, 0).ok()?;
    let word = |r: std::ops::Range<usize>| -> [u8; 8] { h[r].try_into().unwrap_or_default() };
    if u64::from_le_bytes(word(0..8)) != MAGIC {
        return None;
    }
    let pid = i32::from_le_bytes(h[8..12].try_into().unwrap_or_default());
    let start = u64::from_le_bytes(word(16..24));
    Some(ProcId { pid, start })
}
