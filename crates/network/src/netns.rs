//! Network namespaces kept as files: a new namespace is bind-mounted on a file (as `ip netns`
//! does under /run/netns), so it outlives the thread that made it and an OCI runtime can join it
//! by path. Work that must happen *inside* a namespace (opening a netlink or DNS socket there)
//! runs on a short-lived thread that enters it, so no daemon thread ever changes namespace:
//! a socket stays in the namespace it was created in (socket(7), network_namespaces(7)).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// Creates a network namespace bound at `path`, runs `inside` in it and returns its result.
/// On any failure nothing is left: no mount, no file.
pub fn create<T, F>(path: &Path, inside: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(path)?;
    let target = path.to_path_buf();
    let outcome = on_thread(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::from(e).context("unshare the network namespace"))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::from(e).context(format!("bind {}", target.display())))?;
        inside()
    });
    if outcome.is_err() {
        remove(path);
    }
    outcome
}

/// Brings the loopback of the current thread's namespace up (SIOCSIFFLAGS, netdevice(7)): a
/// plain ioctl on the namespace thread, cheaper than a netlink round trip, and done before any
/// socket is bound to a loopback address (a UDP socket bound to 127.0.0.11 while `lo` is down
/// would answer from 127.0.0.1, which a connected resolver drops).
pub fn loopback_up() -> Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in `request` into it; the
    // socket and the request outlive the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(Error::from(std::io::Error::last_os_error()).context("flags of lo"));
    }
    // SAFETY: ifru_flags is the member SIOCGIFFLAGS filled in.
    unsafe {
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS sets the flags from `request`, as above.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(Error::from(std::io::Error::last_os_error()).context("bring lo up"));
    }
    Ok(())
}

/// Runs `inside` in the network namespace bound at (or linked from) `path`.
pub fn enter<T, F>(path: &Path, inside: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let file = std::fs::File::open(path)
        .map_err(|e| Error::from(e).context(format!("open {}", path.display())))?;
    on_thread(move || {
        nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::from(e).context("enter the network namespace"))?;
        inside()
    })
}

/// Opens a namespace file (for IFLA_NET_NS_FD: creating a link inside it).
pub fn open(path: &Path) -> Result<OwnedFd> {
    Ok(std::fs::File::open(path)
        .map_err(|e| Error::from(e).context(format!("open {}", path.display())))?
        .into())
}

/// Unmounts and deletes a namespace file. The namespace itself ends (and the links inside it
/// with it) once no process, mount or socket refers to it any more.
pub fn remove(path: &Path) {
    let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Whether a namespace is bound at `path`: its inode is an nsfs one, not the empty file.
pub fn is_bound(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// The namespace files under `dir` (stale ones are found this way at daemon start).
pub fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect()
}

/// Runs `work` on a new thread and waits for it: the thread ends with whatever namespace it
/// entered, so the caller's thread is never moved.
fn on_thread<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    std::thread::Builder::new()
        .name("berth-netns".into())
        .stack_size(256 * 1024)
        .spawn(work)
        .map_err(|e| Error::internal(format!("spawn a namespace thread: {e}")))?
        .join()
        .map_err(|_| Error::internal("the namespace thread panicked"))?
}
