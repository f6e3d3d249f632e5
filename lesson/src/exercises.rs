//! Which exercises follow which lesson, read from the workspace's exercise manifest
//! (`exercises/manifest.toml`, the one ordered list that `cargo xtask exercise` runs), so that
//! each lesson ends by naming the learner's next task.

/// The manifest, built into the binary: the lesson crate belongs to this workspace, so the file
/// is always beside it. Only three keys of each `[[exercise]]` table are read here; xtask reads
/// the whole of it, and its test checks the lesson names against every chapter.
const MANIFEST: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../exercises/manifest.toml"
));

/// The exercises that follow lesson `lesson` of chapter `chapter`, in manifest order.
///
/// ```
/// assert!(lesson::exercises_after("sync", "race").contains(&"race-lock"));
/// assert!(lesson::exercises_after("sync", "no-such-lesson").is_empty());
/// ```
pub fn exercises_after(chapter: &str, lesson: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut entry: [Option<&'static str>; 3] = [None; 3];
    let mut flush = |entry: &mut [Option<&'static str>; 3]| {
        if let [Some(name), Some(c), Some(l)] = *entry
            && c == chapter
            && l == lesson
        {
            found.push(name);
        }
        *entry = [None; 3];
    };
    for line in MANIFEST.lines() {
        let line = line.trim();
        if line == "[[exercise]]" {
            flush(&mut entry);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        // Only one-line string values: `key = "value"`.
        let Some(value) = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
        else {
            continue;
        };
        match key.trim() {
            "name" => entry[0] = Some(value),
            "chapter" => entry[1] = Some(value),
            "lesson" => entry[2] = Some(value),
            _ => {}
        }
    }
    flush(&mut entry);
    found
}
