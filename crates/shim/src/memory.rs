//! Keeps the long-lived monitor small.
//!
//! Setup runs most of the runtime library once (spec parsing, cgroups, fork protocol); the pages
//! of code, read-only data and heap it touched would stay counted in the shim's resident set
//! for the container's whole life, although the monitor loop never uses them again. After setup
//! [`trim`] gives them back:
//! - clean, read-only file-backed mappings (code and constants of the binary and its
//!   libraries; those with no copy-on-write page only) are dropped with `MADV_DONTNEED`
//!   (madvise(2): a private file mapping is refilled from the file on the next access). That is
//!   what memory reclaim may do to such pages at any time, so it changes nothing but the count;
//!   the pages stay in the page cache, shared. Mappings with copied (relocated) pages are left
//!   alone, as dropping those would lose the relocations;
//! - the heap is trimmed with `malloc_trim(3)`;
//! - the main stack's pages below the current frame (deep setup calls left them) are dropped:
//!   memory below the stack pointer is dead by the ABI and comes back zero-filled when used.

use std::io::Read;

/// Drops the clean read-only pages setup touched and returns free heap to the kernel.
pub fn trim() {
    let mut smaps = String::new();
    if std::fs::File::open("/proc/self/smaps")
        .and_then(|mut f| f.read_to_string(&mut smaps))
        .is_err()
    {
        return;
    }
    let regions = droppable_regions(&smaps);
    let stack = stack_region(&smaps);
    drop(smaps);
    let here = 0u8;
    let frame = std::hint::black_box(&here) as *const u8 as usize;
    // Only when running on the main stack (not in another thread's).
    if let Some((start, _)) = stack.filter(|(start, end)| (*start..*end).contains(&frame)) {
        // Keep a margin below this frame for the calls made from here on.
        let end = (frame.saturating_sub(STACK_MARGIN)) & !(PAGE - 1);
        if end > start {
            // SAFETY: [start, end) lies in the main thread's stack, more than STACK_MARGIN
            // below the frame of this function: no live frame or red zone is in it (the
            // only deeper frames while madvise runs are its own small wrapper's).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
    for (start, end) in regions {
        // SAFETY: the range is a whole mapping of this process that is read-only, file-backed
        // and has no private (copied) page, so every page can be refilled from its file and no
        // data is lost; no Rust object refers to the mapping as anything but immutable bytes.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    // SAFETY: malloc_trim only releases free memory of the allocator; it takes no pointer.
    unsafe { libc::malloc_trim(0) };
}

/// Bytes kept below the caller's frame when the stack is trimmed.
const STACK_MARGIN: usize = 16 * 1024;
const PAGE: usize = 4096;

/// The `[stack]` mapping in `smaps`.
fn stack_region(smaps: &str) -> Option<(usize, usize)> {
    smaps
        .lines()
        .filter(|line| line.ends_with("[stack]"))
        .find_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
}

/// Address ranges of the mappings in `smaps` (the text of /proc/PID/smaps, proc(5)) that are
/// file-backed, not writable, and hold no anonymous (copy-on-write) page.
fn droppable_regions(smaps: &str) -> Vec<(usize, usize)> {
    let mut regions = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            // A mapping header: range perms offset dev inode [path].
            let perms = fields.next().unwrap_or("");
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            let eligible = perms.starts_with('r')
                && !perms.contains('w')
                && perms.ends_with('p')
                && inode != "0"
                && path.starts_with('/');
            current = eligible.then_some((start, end));
        } else if first == "Anonymous:"
            && let Some(region) = current.take()
            && fields.next() == Some("0")
        {
            regions.push(region);
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_qualify() {
        let smaps = "\
55bc9658c000-55bc96678000 r--p 00000000 fe:00 5358630   /usr/bin/x
Rss:                 264 kB
Anonymous:             0 kB
55bc96678000-55bc96899000 r-xp 000eb000 fe:00 5358630   /usr/bin/x
Anonymous:             0 kB
55bc96899000-55bc968db000 r--p 0030b000 fe:00 5358630   /usr/bin/x
Anonymous:           264 kB
55bc968db000-55bc968dd000 rw-p 0034c000 fe:00 5358630   /usr/bin/x
Anonymous:             0 kB
7ffd1000-7ffd2000 r-xp 00000000 00:00 0                  [vdso]
Anonymous:             0 kB
7ffe1000-7ffe2000 rw-p 00000000 00:00 0                  [stack]
Anonymous:            68 kB
";
        assert_eq!(
            droppable_regions(smaps),
            vec![
                (0x55bc9658c000, 0x55bc96678000),
                (0x55bc96678000, 0x55bc96899000)
            ]
        );
    }

    #[test]
    fn the_stack_mapping_is_found() {
        let smaps = "7ffe1000-7ffe3000 rw-p 00000000 00:00 0                  [stack]\nRss: 8 kB\n";
        assert_eq!(stack_region(smaps), Some((0x7ffe1000, 0x7ffe3000)));
        assert_eq!(stack_region("nothing"), None);
    }

    #[test]
    fn trimming_keeps_the_process_working() {
        let before: Vec<u8> = (0..=255u8).collect();
        trim();
        // Code and constants come back from the file on use.
        let text = format!("{:?}", before.iter().map(|b| *b as u32).sum::<u32>());
        assert_eq!(text, "32640");
    }
}
