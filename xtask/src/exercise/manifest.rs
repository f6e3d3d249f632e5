//! `exercises/manifest.toml`: the ordered list of exercises. A TOML subset that a few lines
//! read without a TOML crate: `[[exercise]]` tables of `key = "value"` or `key = """` ...
//! `"""` lines, `#` comments, no escapes.

use std::fmt;

/// One exercise, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exercise {
    /// The command-line name, and the `[[bin]]` target in `exercises/Cargo.toml`.
    pub name: String,
    /// The chapter crate of the lesson it follows.
    pub chapter: String,
    /// The lesson it follows (`cargo run -p CHAPTER -- LESSON`).
    pub lesson: String,
    /// Its path under `exercises/` and under `solutions/`.
    pub file: String,
    /// What `cargo xtask exercise hint NAME` prints.
    pub hint: String,
}

impl Exercise {
    /// How the exercise names its lesson: `sync -- race`.
    pub fn link(&self) -> String {
        format!("{} -- {}", self.chapter, self.lesson)
    }
}

/// A line of the manifest that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exercises/manifest.toml:{}: {}", self.line, self.message)
    }
}

impl std::error::Error for ManifestError {}

const KEYS: [&str; 5] = ["name", "chapter", "lesson", "file", "hint"];

#[derive(Default)]
struct Partial {
    line: usize,
    values: [Option<String>; 5],
}

impl Partial {
    fn finish(self) -> Result<Exercise, ManifestError> {
        let [name, chapter, lesson, file, hint] = self.values;
        let missing = |key: &str| ManifestError {
            line: self.line,
            message: format!("this [[exercise]] has no `{key}`"),
        };
        Ok(Exercise {
            name: name.ok_or_else(|| missing("name"))?,
            chapter: chapter.ok_or_else(|| missing("chapter"))?,
            lesson: lesson.ok_or_else(|| missing("lesson"))?,
            file: file.ok_or_else(|| missing("file"))?,
            hint: hint.ok_or_else(|| missing("hint"))?,
        })
    }
}

/// Read the manifest's text: the exercises in order.
///
/// # Errors
/// The first line that is not a comment, a blank, `[[exercise]]` or a known `key = value`
/// of the current table (given once), or a table missing a key.
pub fn parse(text: &str) -> Result<Vec<Exercise>, ManifestError> {
    let err = |line: usize, message: String| ManifestError { line, message };
    let mut out = Vec::new();
    let mut current: Option<Partial> = None;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[exercise]]" {
            if let Some(done) = current.take() {
                out.push(done.finish()?);
            }
            current = Some(Partial {
                line: n,
                ..Partial::default()
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(
                n,
                format!("expected `key = \"value\"`, found {line:?}"),
            ));
        };
        let key = key.trim();
        let value = value.trim();
        let Some(slot) = KEYS.iter().position(|k| *k == key) else {
            return Err(err(
                n,
                format!("unknown key {key:?} (known: {})", KEYS.join(", ")),
            ));
        };
        let Some(table) = current.as_mut() else {
            return Err(err(n, "a key before the first [[exercise]]".into()));
        };
        let text = if value == "\"\"\"" {
            let mut body = Vec::new();
            loop {
                match lines.next() {
                    Some((_, l)) if l.trim() == "\"\"\"" => break,
                    Some((_, l)) => body.push(l.trim_end()),
                    None => return Err(err(n, "a \"\"\" string is never closed".into())),
                }
            }
            body.join("\n").trim().to_owned()
        } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value[1..value.len() - 1].to_owned()
        } else {
            return Err(err(n, format!("the value of {key} is not a \"string\"")));
        };
        if text.contains('\\') || (value != "\"\"\"" && text.contains('"')) {
            return Err(err(
                n,
                format!("the value of {key} has an escape or a quote"),
            ));
        }
        if table.values[slot].replace(text).is_some() {
            return Err(err(n, format!("{key} is given twice in one [[exercise]]")));
        }
    }
    if let Some(done) = current.take() {
        out.push(done.finish()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_multi_line_values() {
        let text = "# c\n[[exercise]]\nname = \"a\"\nchapter = \"sync\"\nlesson = \"race\"\n\
                    file = \"sync/a.rs\"\nhint = \"\"\"\n  first\n  second\n\"\"\"\n\n\
                    [[exercise]]\nname=\"b\"\nchapter=\"x\"\nlesson=\"y\"\nfile=\"z\"\nhint=\"h\"\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].hint, "first\n  second");
        assert_eq!(got[0].link(), "sync -- race");
        assert_eq!(got[1].name, "b");
    }

    #[test]
    fn mistakes_name_their_line() {
        let bad = |text: &str| parse(text).unwrap_err().line;
        assert_eq!(bad("name = \"a\""), 1);
        assert_eq!(bad("[[exercise]]\nname = \"a\"\nname = \"b\""), 3);
        assert_eq!(bad("[[exercise]]\ncolour = \"a\""), 2);
        assert_eq!(bad("[[exercise]]\nname = a"), 2);
        assert_eq!(bad("[[exercise]]\nhint = \"\"\"\nnever closed"), 2);
        assert_eq!(bad("[[exercise]]\nname = \"a\\n\""), 2);
        assert_eq!(bad("\n[[exercise]]\nname = \"a\"\n"), 2, "no chapter");
    }
}
