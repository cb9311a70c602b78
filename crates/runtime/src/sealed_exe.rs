//! Protection against CVE-2019-5736: a container process that can reach the runtime's own
//! executable (through /proc/PID/exe of a runtime process that entered the container, or by
//! making the container's program a `#!/proc/self/exe` script) could overwrite the host binary.
//! Before entering any container the runtime re-executes itself from a sealed memfd copy: then
//! /proc/self/exe is an anonymous, write-sealed file, and the host binary is never exposed.

use std::ffi::CString;
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;

use crate::error::{Error, Result, sys};

/// Environment marker of a process already running from the sealed copy.
const SEALED_MARKER: &str = "_BERTH_RUNTIME_SEALED";

/// Whether this process runs from a sealed copy (it removes the marker from the environment so
/// children do not inherit it).
fn is_sealed() -> bool {
    let sealed = std::env::var_os(SEALED_MARKER).is_some();
    if sealed {
        // SAFETY: called at start-up while the process is single-threaded.
        unsafe { std::env::remove_var(SEALED_MARKER) };
    }
    sealed && current_exe_is_sealed_memfd()
}

fn current_exe_is_sealed_memfd() -> bool {
    let Ok(file) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS reads flags of a descriptor we own.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Re-executes the current program from a sealed memfd unless it already runs from one.
/// Returns only when already sealed; otherwise the process image is replaced.
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let mut source = std::fs::File::open("/proc/self/exe").map_err(sys("open /proc/self/exe"))?;
    let name = c"berth-runtime";
    // SAFETY: memfd_create takes a NUL-terminated name and flags.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(Error::sys("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let mut copy = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let length = source.metadata().map_err(sys("stat /proc/self/exe"))?.len();
    let mut copied = 0u64;
    while copied < length {
        // SAFETY: both descriptors are open; sendfile copies inside the kernel.
        let sent = unsafe {
            libc::sendfile(
                copy.as_raw_fd(),
                source.as_raw_fd(),
                std::ptr::null_mut(),
                (length - copied) as usize,
            )
        };
        if sent <= 0 {
            // Fall back to a plain copy (sendfile may be refused between some file types).
            source.rewind().map_err(sys("rewind"))?;
            copy.set_len(0).map_err(sys("truncate memfd"))?;
            copy.rewind().map_err(sys("rewind memfd"))?;
            let mut bytes = Vec::new();
            source
                .read_to_end(&mut bytes)
                .map_err(sys("read /proc/self/exe"))?;
            std::io::Write::write_all(&mut copy, &bytes).map_err(sys("write memfd"))?;
            break;
        }
        copied += sent as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our own memfd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(Error::sys("seal memfd", std::io::Error::last_os_error()));
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::InvalidArgument("NUL in arguments".into()))?;
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut entry = k.into_encoded_bytes();
            entry.push(b'=');
            entry.extend(v.into_encoded_bytes());
            CString::new(entry).ok()
        })
        .collect();
    env.push(CString::new(format!("{SEALED_MARKER}=1")).expect("no NUL"));
    // SAFETY: execveat with AT_EMPTY_PATH runs the file behind the descriptor; argument
    // vectors are NUL-terminated arrays of valid C strings that outlive the call.
    let errno = {
        let argv: Vec<*const libc::c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = env
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: execveat with AT_EMPTY_PATH runs the file behind the descriptor; both vectors
        // are NUL-terminated arrays of pointers to C strings that outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                copy.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        std::io::Error::last_os_error()
    };
    Err(Error::sys("re-exec from sealed copy", errno))
}
