//! What the xtask tests share: each chapter's lesson list, from its library.

/// A chapter's lessons, from its library. A new chapter must be added here (and to xtask's
/// dev-dependencies), or the structure test fails.
pub fn lessons_of(chapter: &str) -> Option<&'static lesson::Chapter> {
    match chapter {
        "threads" => Some(&threads::CHAPTER),
        "sync" => Some(&sync::CHAPTER),
        "queues" => Some(&queues::CHAPTER),
        "processes" => Some(&processes::CHAPTER),
        "ipc" => Some(&ipc::CHAPTER),
        "pool" => Some(&pool::CHAPTER),
        "coroutines" => Some(&coroutines::CHAPTER),
        _ => None,
    }
}
