//! Virtual paths and the one normalisation function that every path goes through.
//!
//! A [`VPath`] is a list of validated names below the hub's root `/`. It can never hold `.`,
//! `..`, an empty name, a `/` or a NUL byte, so a path built from it can never climb out of the
//! root, and a host path made by joining its names below a mount's directory stays below it.

use std::fmt;

/// Longest allowed name, in bytes (as on common host filesystems).
pub const MAX_NAME: usize = 255;
/// Longest allowed path, in bytes.
pub const MAX_PATH: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("name '{0}…' is longer than {MAX_NAME} bytes")]
    NameTooLong(String),
    #[error("path is longer than {MAX_PATH} bytes")]
    PathTooLong,
    #[error("name is not valid UTF-8: {0}")]
    InvalidUtf8(String),
    #[error("'{0}' is not a valid file name")]
    BadName(String),
}

/// An absolute, normalised path in the virtual filesystem.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VPath(Vec<String>);

impl VPath {
    pub fn root() -> VPath {
        VPath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The last name, or `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<VPath> {
        if self.0.is_empty() {
            None
        } else {
            Some(VPath(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    /// Appends one validated name.
    pub fn join(&self, name: &str) -> Result<VPath, PathError> {
        validate_name(name)?;
        let mut v = self.0.clone();
        v.push(name.to_string());
        Ok(VPath(v))
    }

    /// Appends names that are already known to be valid (taken from another `VPath`).
    pub fn join_names(&self, names: &[String]) -> VPath {
        let mut v = self.0.clone();
        v.extend(names.iter().cloned());
        VPath(v)
    }

    pub fn starts_with(&self, other: &VPath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// The names of `self` below `base`, if `self` is inside `base`.
    pub fn strip_prefix(&self, base: &VPath) -> Option<&[String]> {
        if self.starts_with(base) {
            Some(&self.0[base.0.len()..])
        } else {
            None
        }
    }

    /// The path as the prompt shows it: `~` for the root, `~/a/b` below it.
    pub fn display_tilde(&self) -> String {
        if self.0.is_empty() {
            "~".to_string()
        } else {
            format!("~/{}", self.0.join("/"))
        }
    }

    /// Parses an absolute path string such as `/a/b` (as stored in the database).
    pub fn parse_absolute(s: &str) -> Result<VPath, PathError> {
        normalize(&VPath::root(), s)
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("/")
        } else {
            for n in &self.0 {
                write!(f, "/{n}")?;
            }
            Ok(())
        }
    }
}

impl fmt::Debug for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VPath({self})")
    }
}

/// Checks that `name` can be one component of a path.
pub fn validate_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name.contains('\0') {
        return Err(PathError::Nul);
    }
    if name == "." || name == ".." || name.contains('/') {
        return Err(PathError::BadName(name.to_string()));
    }
    if host_len(name) > MAX_NAME {
        let mut end = 32.min(name.len());
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        return Err(PathError::NameTooLong(name[..end].to_string()));
    }
    Ok(())
}

/// Resolves `input` against the working directory `cwd`.
///
/// `~` and `~/…` start at the root, `/…` is absolute, anything else is relative to `cwd`.
/// `.` is dropped and `..` removes the previous name; `..` at the root stays at the root, as
/// on POSIX systems. Empty input, NUL bytes and over-long names or paths are errors.
pub fn normalize(cwd: &VPath, input: &str) -> Result<VPath, PathError> {
    if input.is_empty() {
        return Err(PathError::Empty);
    }
    if input.contains('\0') {
        return Err(PathError::Nul);
    }
    if input.len() > MAX_PATH {
        return Err(PathError::PathTooLong);
    }
    let (mut names, rest) = if input == "~" {
        (Vec::new(), "")
    } else if let Some(rest) = input.strip_prefix("~/") {
        (Vec::new(), rest)
    } else if let Some(rest) = input.strip_prefix('/') {
        (Vec::new(), rest)
    } else {
        (cwd.0.clone(), input)
    };
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                names.pop();
            }
            name => {
                validate_name(name)?;
                names.push(name.to_string());
            }
        }
    }
    let total: usize = names.iter().map(|n| n.len() + 1).sum();
    if total > MAX_PATH {
        return Err(PathError::PathTooLong);
    }
    Ok(VPath(names))
}

/// The length in bytes of `name` on the host: a stand-in for a raw byte counts as one.
fn host_len(name: &str) -> usize {
    name.chars()
        .map(|c| match crate::text::raw_byte(c) {
            Some(_) => 1,
            None => c.len_utf8(),
        })
        .sum()
}

/// Converts a host file name to a VFS name. Every name can be held: the bytes of a name that
/// are not UTF-8 become stand-in characters ([`crate::text::raw_char`]) that [`host_os`]
/// turns back into the same bytes, so such a file can be listed, searched, renamed and
/// removed in a mount, and is shown escaped. (A real character from the stand-ins' range is
/// kept the same way, byte by byte, so the mapping is exact both ways.)
pub fn host_name(name: &std::ffi::OsStr) -> Result<String, PathError> {
    let s = host_string(name);
    validate_name(&s)?;
    Ok(s)
}

/// A host path as the terminal may show it: escaped, bytes that are not UTF-8 as `\xHH`.
pub fn shown_host(p: &std::path::Path) -> String {
    crate::text::escape(&host_string(p.as_os_str())).into_owned()
}

/// Host bytes as a string, through stand-ins where they are not UTF-8 (see [`host_name`]).
fn host_string(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| crate::text::raw_byte(c).is_some()) => s.to_string(),
        _ => {
            let mut s = String::with_capacity(bytes.len() * 2);
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    if crate::text::raw_byte(c).is_some() {
                        let mut b = [0; 4];
                        s.extend(c.encode_utf8(&mut b).bytes().map(crate::text::raw_char));
                    } else {
                        s.push(c);
                    }
                }
                s.extend(chunk.invalid().iter().map(|&b| crate::text::raw_char(b)));
            }
            s
        }
    }
}

/// The host file name a VFS name stands for (the inverse of [`host_name`]).
pub fn host_os(name: &str) -> std::borrow::Cow<'_, std::ffi::OsStr> {
    use std::os::unix::ffi::OsStringExt;
    if !name.chars().any(|c| crate::text::raw_byte(c).is_some()) {
        return std::borrow::Cow::Borrowed(std::ffi::OsStr::new(name));
    }
    let mut bytes = Vec::with_capacity(name.len());
    for c in name.chars() {
        match crate::text::raw_byte(c) {
            Some(b) => bytes.push(b),
            None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    std::borrow::Cow::Owned(std::ffi::OsString::from_vec(bytes))
}

/// Why the stored tree cannot take `name`, if it cannot: the stored tree holds UTF-8 names
/// free of control characters and of characters that reorder text (names a mount may hold,
/// and shows escaped).
pub fn stored_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(|c| crate::text::raw_byte(c).is_some()) {
        Some("its name is not UTF-8, and stored names are")
    } else if name.chars().any(crate::text::is_unsafe) {
        Some(
            "its name holds control characters (tabs, new lines, escapes) or characters that \
             reorder text, which stored names cannot",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> VPath {
        VPath::parse_absolute(s).unwrap()
    }

    #[test]
    fn host_names_that_are_not_utf8_go_there_and_back() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        for raw in [
            &b"caf\xe9.txt"[..],
            b"\xff\xfe",
            "plain ☕".as_bytes(),
            // A real character from the stand-ins' own range.
            "\u{10ff90}x".as_bytes(),
            &[b'a'; 255],
            &[0xff; 255],
        ] {
            let name = host_name(OsStr::from_bytes(raw)).unwrap();
            assert_eq!(host_os(&name).as_bytes(), raw);
        }
        let name = host_name(OsStr::from_bytes(b"caf\xe9")).unwrap();
        assert_eq!(crate::text::escape(&name), "$'caf\\xe9'");
        assert!(stored_problem(&name).unwrap().contains("UTF-8"));
        assert!(stored_problem("a\u{1b}[31m").is_some());
        assert!(stored_problem("naïve.txt").is_none());
    }

    #[test]
    fn basic_forms() {
        let cwd = p("/Projects/Main");
        assert_eq!(normalize(&cwd, "src").unwrap(), p("/Projects/Main/src"));
        assert_eq!(normalize(&cwd, "~").unwrap(), VPath::root());
        assert_eq!(normalize(&cwd, "~/x").unwrap(), p("/x"));
        assert_eq!(normalize(&cwd, "/a/./b//c/").unwrap(), p("/a/b/c"));
        assert_eq!(normalize(&cwd, "../..").unwrap(), VPath::root());
        assert_eq!(normalize(&cwd, "../../../../etc").unwrap(), p("/etc"));
        assert_eq!(normalize(&cwd, "~user").unwrap(), p("/Projects/Main/~user"));
        assert_eq!(p("/a/b").display_tilde(), "~/a/b");
        assert_eq!(VPath::root().to_string(), "/");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cwd = VPath::root();
        assert_eq!(normalize(&cwd, ""), Err(PathError::Empty));
        assert_eq!(normalize(&cwd, "a\0b"), Err(PathError::Nul));
        assert!(matches!(
            normalize(&cwd, &"x".repeat(300)),
            Err(PathError::NameTooLong(_))
        ));
        assert_eq!(
            normalize(&cwd, &"abc/".repeat(2000)),
            Err(PathError::PathTooLong)
        );
        assert!(VPath::root().join("..").is_err());
        assert!(VPath::root().join("a/b").is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("~".to_string()),
            "[a-zA-Z0-9._~ -]{1,12}",
            "\\PC{1,6}",
        ]
    }

    fn input() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(""), Just("/"), Just("~/"), Just("~")],
            proptest::collection::vec(component(), 0..12),
        )
            .prop_map(|(lead, parts)| format!("{lead}{}", parts.join("/")))
    }

    proptest! {
        /// Whatever the input, the result is a clean path: no name climbs, none is empty, none
        /// holds a separator or NUL, so joining it under any base directory stays under it.
        #[test]
        fn normalised_paths_never_escape(cwd_in in input(), inp in input()) {
            let cwd = normalize(&VPath::root(), &cwd_in).unwrap_or_default();
            if let Ok(v) = normalize(&cwd, &inp) {
                for n in v.names() {
                    prop_assert!(n != ".." && n != "." && !n.is_empty());
                    prop_assert!(!n.contains('/') && !n.contains('\0'));
                }
                // Joined under a jail directory, the lexical result stays inside it.
                let base = std::path::Path::new("/jail/root");
                let mut host = base.to_path_buf();
                for n in v.names() { host.push(n); }
                let mut depth: i64 = 0;
                for c in host.strip_prefix(base).unwrap().components() {
                    match c {
                        std::path::Component::Normal(_) => depth += 1,
                        _ => prop_assert!(false, "unexpected component {:?}", c),
                    }
                }
                prop_assert_eq!(depth as usize, v.names().len());
                // Normalising is idempotent.
                prop_assert_eq!(normalize(&cwd, &v.to_string()).unwrap(), v.clone());
            }
        }

        /// Normalising the shown form gives the same path back, and so does normalising
        /// what normalising gave: from the root, from any other directory, and with `~/`.
        #[test]
        fn normalising_is_idempotent_and_display_parses_back(cwd_in in input(), inp in input()) {
            let cwd = normalize(&VPath::root(), &cwd_in).unwrap_or_default();
            if let Ok(v) = normalize(&cwd, &inp) {
                let shown = v.to_string();
                prop_assert!(shown.starts_with('/'));
                prop_assert_eq!(VPath::parse_absolute(&shown).unwrap(), v.clone());
                prop_assert_eq!(normalize(&p("/elsewhere"), &shown).unwrap(), v.clone());
                let tilde = v.display_tilde();
                prop_assert_eq!(normalize(&cwd, &tilde).unwrap(), v.clone());
                // Extra separators, `.` and a trailing slash change nothing.
                let noisy = format!("/{}/", v.names().join("/./"));
                prop_assert_eq!(normalize(&cwd, &noisy).unwrap(), v.clone());
                let doubled = format!("//{}//", v.names().join("//"));
                prop_assert_eq!(normalize(&cwd, &doubled).unwrap(), v);
            }
        }

        /// Normalising `rel` against a directory is the same as normalising the directory
        /// joined with `rel`, and joining a valid name is appending it.
        #[test]
        fn joining_then_normalising_is_normalising(
            cwd_in in input(),
            rel in proptest::collection::vec(component(), 1..8),
            name in "[a-zA-Z0-9._-]{1,12}",
        ) {
            let cwd = normalize(&VPath::root(), &cwd_in).unwrap_or_default();
            let rel = rel.join("/");
            // Only a relative path (not empty, not starting at the root or at `~`).
            if rel.is_empty() || rel.starts_with('/') || rel.starts_with('~') {
                return Ok(());
            }
            let joined = format!("{cwd}/{rel}");
            match (normalize(&cwd, &rel), normalize(&VPath::root(), &joined)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                // The joined form is longer, so only it may pass the path length limit.
                (Ok(_), Err(PathError::PathTooLong)) => {}
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
            if name != "." && name != ".." {
                let j = cwd.join(&name).unwrap();
                prop_assert_eq!(j.parent().unwrap(), cwd.clone());
                prop_assert_eq!(j.name(), Some(name.as_str()));
                prop_assert_eq!(normalize(&cwd, &name).unwrap(), j);
            }
        }

        /// Any mix of `.`, `..`, `//` and trailing slashes ends at or below the root, at the
        /// depth that counting the names and the `..`s gives.
        #[test]
        fn dots_and_slashes_never_climb_out(
            steps in proptest::collection::vec(
                prop_oneof![Just("."), Just(".."), Just(""), Just("a"), Just("b")],
                0..40,
            ),
            trailing in 0usize..3,
        ) {
            let inp = format!("/{}{}", steps.join("/"), "/".repeat(trailing));
            let mut depth: Vec<&str> = Vec::new();
            for s in &steps {
                match *s {
                    "" | "." => {}
                    ".." => { depth.pop(); }
                    n => depth.push(n),
                }
            }
            let v = normalize(&p("/x/y"), &inp).unwrap();
            prop_assert_eq!(v.names(), depth.as_slice());
        }

        /// A relative path never goes above the root, however many `..` it holds.
        #[test]
        fn dotdot_is_clamped_at_root(n in 0usize..40, tail in "[a-z]{1,8}") {
            let cwd = p("/a/b");
            let inp = format!("{}{}", "../".repeat(n), tail);
            let v = normalize(&cwd, &inp).unwrap();
            let expected_depth = 2usize.saturating_sub(n) + 1;
            prop_assert_eq!(v.names().len(), expected_depth);
            prop_assert_eq!(v.name(), Some(tail.as_str()));
        }
    }
}
