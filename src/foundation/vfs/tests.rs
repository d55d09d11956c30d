//! Tests of the VFS (foundation): a host mount is a jail. Whatever path is asked for, and
//! whatever symlinks the host directory holds, nothing outside the mounted directory is read,
//! listed or written. A file written from a stream is replaced whole or not at all.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;

/// A VFS with `host` mounted at `/m`.
fn mounted(host: &Path) -> Vfs {
    let vfs = Vfs::new(Arc::new(Store::in_memory().unwrap())).unwrap();
    vfs.mount(host, &VPath::parse_absolute("/m").unwrap())
        .unwrap();
    vfs
}

fn v(s: &str) -> VPath {
    VPath::parse_absolute(s).unwrap()
}

/// A host directory holding a file, a folder, and links that lead in and out; and, beside it,
/// a secret the mount must never reach.
struct Fixture {
    _root: tempfile::TempDir,
    host: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let host = root.path().join("host");
    let outside = root.path().join("outside");
    fs::create_dir_all(host.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret").unwrap();
    fs::write(host.join("sub/inside.txt"), "inside").unwrap();
    symlink(outside.join("secret"), host.join("abs-link")).unwrap();
    symlink("../outside/secret", host.join("rel-link")).unwrap();
    symlink("../../", host.join("sub/up-link")).unwrap();
    symlink(&outside, host.join("dir-link")).unwrap();
    symlink("sub/inside.txt", host.join("ok-link")).unwrap();
    Fixture {
        _root: root,
        host,
        outside,
    }
}

fn is_escape<T: std::fmt::Debug>(r: VResult<T>) -> bool {
    matches!(r, Err(VfsError::Escape(_)))
}

#[test]
fn links_that_leave_the_mount_are_refused() {
    let f = fixture();
    let vfs = mounted(&f.host);
    for link in [
        "/m/abs-link",
        "/m/rel-link",
        "/m/dir-link/secret",
        "/m/sub/up-link/outside/secret",
    ] {
        let p = v(link);
        assert!(is_escape(vfs.read(&p)), "read {link}");
        assert!(is_escape(vfs.open_read(&p).map(|_| ())), "open {link}");
        assert!(is_escape(vfs.write(&p, b"pwned")), "write {link}");
        assert!(is_escape(vfs.append(&p, b"pwned")), "append {link}");
    }
    assert!(is_escape(vfs.read_dir(&v("/m/dir-link"))));
    assert!(is_escape(vfs.read_dir(&v("/m/sub/up-link"))));
    assert!(is_escape(vfs.mkdir(&v("/m/dir-link/new"), false)));
    assert!(is_escape(vfs.touch(&v("/m/dir-link/new.txt"))));
    // Nothing outside changed, and nothing was made there.
    assert_eq!(
        fs::read_to_string(f.outside.join("secret")).unwrap(),
        "secret"
    );
    let names: Vec<_> = fs::read_dir(&f.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"]);
    // A link that stays inside is followed.
    assert_eq!(vfs.read(&v("/m/ok-link")).unwrap(), b"inside");
    // A link that leaves is listed, as a link whose target cannot be reached.
    let listed = vfs.read_dir(&v("/m")).unwrap();
    let abs = listed.iter().find(|e| e.name == "abs-link").unwrap();
    assert_eq!(abs.meta.kind, Kind::Broken);
}

#[test]
fn dot_dot_never_leaves_the_mount_for_the_host() {
    let f = fixture();
    let vfs = mounted(&f.host);
    let cwd = v("/m/sub");
    // However many `..`, the path climbs to the VFS root, never to the host's parent.
    for input in [
        "../../../outside/secret",
        "../../../../../../etc/passwd",
        "./../.././../outside",
        "..//..//..//outside/secret/",
    ] {
        let p = normalize(&cwd, input).unwrap();
        assert!(!p.starts_with(&v("/m")), "{input} -> {p}");
        assert!(vfs.mount_of(&p).is_none(), "{input} -> {p}");
        assert!(
            matches!(vfs.read(&p), Err(VfsError::NotFound(_))),
            "{input}"
        );
    }
    // `..` inside the mount stays inside it.
    let p = normalize(&cwd, "../sub/./inside.txt").unwrap();
    assert_eq!(p, v("/m/sub/inside.txt"));
    assert_eq!(
        vfs.host_path(&p).unwrap(),
        fs::canonicalize(&f.host).unwrap().join("sub/inside.txt")
    );
    assert_eq!(vfs.read(&p).unwrap(), b"inside");
}

#[test]
fn a_mount_is_the_directory_it_named_when_mounted() {
    let f = fixture();
    // Mounted through a symlink, the mount is the directory the link named then.
    let via = f.host.with_file_name("via-link");
    symlink(&f.host, &via).unwrap();
    let vfs = mounted(&via);
    let m = vfs.mount_of(&v("/m/x")).unwrap();
    assert_eq!(m.host, fs::canonicalize(&f.host).unwrap());
    // Pointing the link elsewhere later does not move the mount outside.
    fs::remove_file(&via).unwrap();
    symlink(&f.outside, &via).unwrap();
    assert!(matches!(
        vfs.read(&v("/m/secret")),
        Err(VfsError::NotFound(_))
    ));
    // The host directory moved away: the mount says so instead of writing elsewhere.
    let moved = f.host.with_file_name("moved");
    fs::rename(&f.host, &moved).unwrap();
    let err = vfs.write(&v("/m/new.txt"), b"x").unwrap_err().to_string();
    assert!(err.contains("was removed or moved"), "{err}");
    assert!(!moved.join("new.txt").exists());
}

/// Execs that start together in one process (a background job and the line after it) each
/// get a checkout of their own, even within one millisecond.
#[test]
fn checkouts_started_at_once_each_get_their_own_folder() {
    let vfs = Vfs::new(Arc::new(Store::in_memory().unwrap())).unwrap();
    vfs.mkdir(&v("/p"), true).unwrap();
    vfs.write(&v("/p/a.txt"), b"a").unwrap();
    let home = tempfile::tempdir().unwrap();
    let start = std::sync::Barrier::new(8);
    let names: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    checkout::Checkout::create(&vfs, home.path(), &v("/p"), "true", false)
                        .expect("a checkout")
                        .name()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

/// Yields `left` bytes of `x`, then fails (a download cut off).
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("the network went away"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_file_written_from_a_stream_is_replaced_whole_or_not_at_all() {
    let root = tempfile::tempdir().unwrap();
    let vfs = mounted(root.path());
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    // In the stored tree.
    vfs.mkdir(&v("/s"), true).unwrap();
    vfs.write(&v("/s/f"), b"old").unwrap();
    vfs.write_from(&v("/s/f"), &mut &big[..]).unwrap();
    assert!(vfs.read(&v("/s/f")).unwrap() == big);
    assert!(vfs.write_from(&v("/s/f"), &mut Failing(1 << 20)).is_err());
    assert!(vfs.read(&v("/s/f")).unwrap() == big);
    // In a mount, through a temporary renamed over the file, which a failure removes.
    fs::write(root.path().join("f"), "old").unwrap();
    vfs.write_from(&v("/m/f"), &mut &big[..]).unwrap();
    assert!(fs::read(root.path().join("f")).unwrap() == big);
    let e = vfs
        .write_from(&v("/m/f"), &mut Failing(1 << 20))
        .unwrap_err();
    assert!(e.to_string().contains("the network went away"), "{e}");
    assert!(fs::read(root.path().join("f")).unwrap() == big);
    let names: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f"]);
    // A file with another link keeps its inode: written in place from the temporary.
    fs::hard_link(root.path().join("f"), root.path().join("g")).unwrap();
    vfs.write_from(&v("/m/f"), &mut &b"new"[..]).unwrap();
    assert_eq!(fs::read(root.path().join("g")).unwrap(), b"new");
    let mut names: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["f", "g"]);
}

/// A file found by a walk (or looked at before it is opened) and replaced by a fifo before it
/// is read is refused when opened, not waited on for ever: the check is made on what was
/// opened, not on the path beforehand.
#[test]
fn a_file_replaced_by_a_fifo_after_it_was_looked_at_is_not_waited_on() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let f = root.path().join("f");
    fs::write(&f, "data").unwrap();
    let vfs = mounted(root.path());
    let p = v("/m/f");
    let r = vfs.file_ref(&p).unwrap();
    fs::remove_file(&f).unwrap();
    let c = std::ffi::CString::new(f.as_os_str().as_bytes()).unwrap();
    // SAFETY: makes a fifo in this test's temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let vfs = Arc::new(vfs);
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let vfs = vfs.clone();
        std::thread::spawn(move || {
            let refused = |e: &VfsError| e.to_string().contains("is a fifo, socket or device");
            let results = [
                vfs.open_ref(&p, &r).err().is_some_and(|e| refused(&e)),
                vfs.read_ref(&p, &r).err().is_some_and(|e| refused(&e)),
                matches!(vfs.ref_reader().read(&p, &r, 1 << 20), Err(ref e) if refused(e)),
            ];
            let _ = tx.send(results);
        })
    };
    // Only a guard against hanging for ever: nothing is measured.
    let got = rx.recv_timeout(std::time::Duration::from_secs(60));
    if got.is_err() {
        // Give each waiting open its other end (an open for writing that does not wait
        // succeeds only while a reader waits), so the thread ends.
        use std::os::unix::fs::OpenOptionsExt;
        while !worker.is_finished() {
            let _ = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&f);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let _ = worker.join();
    assert_eq!(
        got.expect("opening a fifo waited for a writer"),
        [true, true, true]
    );
}
