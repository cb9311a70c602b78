//! The cgroup v2 device controller: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the cgroup (cgroup-v2.rst "Device controller"; bpf(2); include/uapi/linux/bpf.h).
//!
//! The kernel runs the program on every open/mknod of a block or character device by a member
//! of the cgroup, with R1 pointing at `struct bpf_cgroup_dev_ctx`:
//!
//! ```text
//! offset 0  u32 access_type   (access << 16) | type
//!                             type:   BPF_DEVCG_DEV_BLOCK = 1, BPF_DEVCG_DEV_CHAR = 2
//!                             access: BPF_DEVCG_ACC_MKNOD = 1, _READ = 2, _WRITE = 4
//! offset 4  u32 major
//! offset 8  u32 minor
//! ```
//!
//! Returning 1 allows the access, 0 refuses it with EPERM. With several programs attached
//! (`BPF_F_ALLOW_MULTI`), on this cgroup and its ancestors, every one of them must allow.
//!
//! The instruction encoder below is the 8-byte `struct bpf_insn` of the kernel's eBPF
//! instruction set (Documentation/bpf/standardization/instruction-set.rst).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Device type bits of `access_type` (bpf.h `BPF_DEVCG_DEV_*`).
pub const DEV_BLOCK: u32 = 1;
/// Character device type bit.
pub const DEV_CHAR: u32 = 2;
/// Access bits of `access_type >> 16` (bpf.h `BPF_DEVCG_ACC_*`).
pub const ACC_MKNOD: u32 = 1;
/// Read access bit.
pub const ACC_READ: u32 = 2;
/// Write access bit.
pub const ACC_WRITE: u32 = 4;
/// All three access bits.
pub const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Name given to the programs this crate loads, so that an update can find and replace them.
pub const PROGRAM_NAME: &str = "berth_devices";

// Opcode parts (instruction-set.rst): class | op | source.
const CLASS_LDX: u8 = 0x01;
const CLASS_JMP: u8 = 0x05;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const MODE_MEM: u8 = 0x60;
const SIZE_W: u8 = 0x00;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
const JMP_JEQ: u8 = 0x10;
const JMP_JNE: u8 = 0x50;
const JMP_EXIT: u8 = 0x90;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10).
    pub src: u8,
    /// Signed offset: memory displacement or jump distance in instructions after this one.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// The 8 bytes the kernel reads: code, dst in the low nibble and src in the high nibble of
    /// byte 1 (little-endian bitfields), then off and imm little-endian.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// `dst = *(u32 *)(src + off)`
    pub fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Self {
            code: CLASS_LDX | MODE_MEM | SIZE_W,
            dst,
            src,
            off,
            imm: 0,
        }
    }
    /// `dst = (u32) imm` (32-bit move, zero-extends).
    pub fn mov32_imm(dst: u8, imm: i32) -> Self {
        Self {
            code: CLASS_ALU | OP_MOV | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }
    /// `dst = (u32) src`
    pub fn mov32_reg(dst: u8, src: u8) -> Self {
        Self {
            code: CLASS_ALU | OP_MOV | SRC_X,
            dst,
            src,
            off: 0,
            imm: 0,
        }
    }
    /// `dst = imm` (64-bit).
    pub fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self {
            code: CLASS_ALU64 | OP_MOV | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }
    /// `dst = (u32) dst & imm`
    pub fn and32_imm(dst: u8, imm: i32) -> Self {
        Self {
            code: CLASS_ALU | OP_AND | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }
    /// `dst = (u32) dst >> imm`
    pub fn rsh32_imm(dst: u8, imm: i32) -> Self {
        Self {
            code: CLASS_ALU | OP_RSH | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }
    /// `if dst != imm goto +off`
    pub fn jne_imm(dst: u8, imm: i32, off: i16) -> Self {
        Self {
            code: CLASS_JMP | JMP_JNE | SRC_K,
            dst,
            src: 0,
            off,
            imm,
        }
    }
    /// `if dst == imm goto +off`
    pub fn jeq_imm(dst: u8, imm: i32, off: i16) -> Self {
        Self {
            code: CLASS_JMP | JMP_JEQ | SRC_K,
            dst,
            src: 0,
            off,
            imm,
        }
    }
    /// `return r0`
    pub fn exit() -> Self {
        Self {
            code: CLASS_JMP | JMP_EXIT,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        }
    }
}

/// A device rule as the program sees it. `None` is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramRule {
    /// True to allow, false to deny.
    pub allow: bool,
    /// [`DEV_BLOCK`] or [`DEV_CHAR`]; `None` matches both.
    pub dev_type: Option<u32>,
    /// Major number; `None` matches all.
    pub major: Option<u32>,
    /// Minor number; `None` matches all.
    pub minor: Option<u32>,
    /// [`ACC_MKNOD`] | [`ACC_READ`] | [`ACC_WRITE`] bits the rule is about.
    pub access: u32,
}

// Registers holding the unpacked context.
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// Compiles `rules` into a program where the last matching rule decides and anything no rule
/// matches is refused (the runtime-spec applies device rules in order, later ones overriding).
///
/// An allow rule matches when the requested access is within its access; a deny rule matches
/// when the requested access touches any of its access bits. Rules are tested from the last
/// one backwards, so the first match found is the last in order.
pub fn device_program(rules: &[ProgramRule]) -> Vec<Insn> {
    let mut program = vec![
        Insn::load_u32(R_TYPE, 1, 0),
        Insn::and32_imm(R_TYPE, 0xffff),
        Insn::load_u32(R_ACCESS, 1, 0),
        Insn::rsh32_imm(R_ACCESS, 16),
        Insn::load_u32(R_MAJOR, 1, 4),
        Insn::load_u32(R_MINOR, 1, 8),
    ];
    for rule in rules.iter().rev() {
        // Each test jumps past the end of this rule's block when the rule does not match; the
        // distance is filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut skips: Vec<usize> = Vec::new();
        if let Some(dev_type) = rule.dev_type {
            skips.push(block.len());
            block.push(Insn::jne_imm(R_TYPE, dev_type as i32, 0));
        }
        let access = rule.access & ACC_ALL;
        if access != ACC_ALL {
            // R1 (the context pointer) is free once the context is unpacked.
            block.push(Insn::mov32_reg(1, R_ACCESS));
            if rule.allow {
                block.push(Insn::and32_imm(1, (!access & ACC_ALL) as i32));
                skips.push(block.len());
                block.push(Insn::jne_imm(1, 0, 0));
            } else {
                block.push(Insn::and32_imm(1, access as i32));
                skips.push(block.len());
                block.push(Insn::jeq_imm(1, 0, 0));
            }
        }
        if let Some(major) = rule.major {
            skips.push(block.len());
            block.push(Insn::jne_imm(R_MAJOR, major as i32, 0));
        }
        if let Some(minor) = rule.minor {
            skips.push(block.len());
            block.push(Insn::jne_imm(R_MINOR, minor as i32, 0));
        }
        block.push(Insn::mov64_imm(0, i32::from(rule.allow)));
        block.push(Insn::exit());
        let unconditional = skips.is_empty();
        for at in skips {
            block[at].off = (block.len() - at - 1) as i16;
        }
        program.extend(block);
        if unconditional {
            // Always decides: the rules before it can never be reached.
            return program;
        }
    }
    program.push(Insn::mov64_imm(0, 0));
    program.push(Insn::exit());
    program
}

/// Evaluates a program the way [`device_program`] builds them, for tests: a tiny interpreter
/// of exactly the instructions above. Returns r0.
pub fn interpret(program: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | dev_type, major, minor];
    let mut regs = [0u64; 11];
    let mut pc = 0usize;
    while pc < program.len() {
        let i = program[pc];
        let (dst, src) = (usize::from(i.dst), usize::from(i.src));
        pc += 1;
        match i.code {
            0x61 => regs[dst] = u64::from(ctx[(i.off / 4) as usize]),
            0x54 => regs[dst] = (regs[dst] as u32 & i.imm as u32) as u64,
            0x74 => regs[dst] = ((regs[dst] as u32) >> i.imm) as u64,
            0xb4 => regs[dst] = u64::from(i.imm as u32),
            0xbc => regs[dst] = u64::from(regs[src] as u32),
            0xb7 => regs[dst] = i.imm as i64 as u64,
            0x55 if regs[dst] != i.imm as i64 as u64 => pc += i.off as usize,
            0x15 if regs[dst] == i.imm as i64 as u64 => pc += i.off as usize,
            0x55 | 0x15 => {}
            0x95 => return regs[0],
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    panic!("fell off the end of the program")
}

// bpf(2) commands, program and attach types (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` as BPF_PROG_LOAD reads it (fields up to expected_attach_type).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_QUERY (up to prog_cnt).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info`, as far as `name` (offset 64, 16 bytes).
#[repr(C, align(8))]
struct ProgInfo([u8; 128]);

/// bpf(2). `attr` must be one of the `#[repr(C)]` attribute structs above.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] struct laid out as the prefix of
    // `union bpf_attr` for `cmd`, and its exact size is passed; pointers inside it (insns,
    // license, log buffer, id array, info) point to buffers the callers keep alive across the
    // call. The kernel zero-extends the union past `size`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

fn owned_fd(raw: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) just returned this new file descriptor to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw as i32) }
}

/// Loads a cgroup device program, returning its fd. On failure the load is repeated with the
/// verifier log enabled so that the error says why.
pub fn load_device_program(program: &[Insn]) -> Result<OwnedFd> {
    let bytes: Vec<u8> = program.iter().flat_map(|i| i.encode()).collect();
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME.as_bytes());
    let attr = |log: &mut Vec<u8>| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    let mut no_log = Vec::new();
    match bpf(BPF_PROG_LOAD, &mut attr(&mut no_log)) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(errno) => {
            let mut log = vec![0u8; 64 * 1024];
            let _ = bpf(BPF_PROG_LOAD, &mut attr(&mut log));
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(Error::Bpf {
                op: "prog load",
                errno,
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
            })
        }
    }
}

/// Ids of the device programs attached directly to the cgroup behind `cgroup_fd`.
fn attached_ids(cgroup_fd: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|errno| Error::Bpf {
        op: "prog query",
        errno,
        log: String::new(),
    })?;
    ids.truncate(attr.prog_cnt.min(64) as usize);
    Ok(ids)
}

fn program_name(prog_fd: &OwnedFd) -> Option<String> {
    let mut info = ProgInfo([0; 128]);
    let mut attr = InfoAttr {
        bpf_fd: prog_fd.as_raw_fd() as u32,
        info_len: info.0.len() as u32,
        info: info.0.as_mut_ptr() as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).ok()?;
    let name = &info.0[64..80];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Attaches `program` to the cgroup directory `dir` (BPF_F_ALLOW_MULTI) and then detaches the
/// device programs this crate attached there before. The new filter goes in first: while both
/// are attached both must allow, so there is no moment without a filter.
pub fn install_device_filter(dir: &Path, program: &[Insn]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let cgroup = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| Error::io("open", dir, e))?;
    let cgroup = OwnedFd::from(cgroup);
    let previous = attached_ids(&cgroup)?;
    let prog = load_device_program(program)?;
    let mut attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|errno| Error::Bpf {
        op: "prog attach",
        errno,
        log: String::new(),
    })?;
    for id in previous {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let Ok(old) = bpf(BPF_PROG_GET_FD_BY_ID, &mut get).map(owned_fd) else {
            continue;
        };
        if program_name(&old).as_deref() != Some(PROGRAM_NAME) {
            continue;
        }
        let mut detach = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: old.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut detach).map_err(|errno| Error::Bpf {
            op: "prog detach",
            errno,
            log: String::new(),
        })?;
    }
    Ok(())
}

/// Number of device programs attached directly to the cgroup directory `dir` (for tests and
/// diagnostics).
pub fn attached_device_programs(dir: &Path) -> Result<usize> {
    let file = std::fs::File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    Ok(attached_ids(&OwnedFd::from(file))?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_kernel_layout() {
        // r2 = *(u32 *)(r1 + 4): code 0x61, regs dst=2 src=1 -> 0x12.
        assert_eq!(
            Insn::load_u32(2, 1, 4).encode(),
            [0x61, 0x12, 4, 0, 0, 0, 0, 0]
        );
        // if r4 != 259 goto +3
        assert_eq!(
            Insn::jne_imm(4, 259, 3).encode(),
            [0x55, 0x04, 3, 0, 3, 1, 0, 0]
        );
        // r0 = 1 (64-bit)
        assert_eq!(Insn::mov64_imm(0, 1).encode(), [0xb7, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Insn::and32_imm(2, 0xffff).encode(),
            [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]
        );
        assert_eq!(
            Insn::mov32_reg(1, 3).encode(),
            [0xbc, 0x31, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::jne_imm(1, -1, -2).encode()[2..],
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    fn rule(
        allow: bool,
        dev_type: Option<u32>,
        major: Option<u32>,
        minor: Option<u32>,
        access: u32,
    ) -> ProgramRule {
        ProgramRule {
            allow,
            dev_type,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn last_matching_rule_wins_and_default_is_deny() {
        let rules = [
            rule(true, Some(DEV_CHAR), None, None, ACC_ALL),
            rule(false, Some(DEV_CHAR), Some(1), Some(3), ACC_WRITE),
            rule(true, Some(DEV_BLOCK), Some(8), None, ACC_READ),
        ];
        let p = device_program(&rules);
        // /dev/null read allowed, write (or read+write) denied.
        assert_eq!(interpret(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(interpret(&p, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(interpret(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 0);
        // /dev/zero untouched by the deny rule.
        assert_eq!(interpret(&p, DEV_CHAR, ACC_WRITE, 1, 5), 1);
        // block 8:x read only.
        assert_eq!(interpret(&p, DEV_BLOCK, ACC_READ, 8, 1), 1);
        assert_eq!(interpret(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 1), 0);
        assert_eq!(interpret(&p, DEV_BLOCK, ACC_READ, 9, 1), 0);
        // A later allow re-opens what an earlier deny closed.
        let p = device_program(&[
            rule(false, None, None, None, ACC_ALL),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), ACC_ALL),
        ]);
        assert_eq!(interpret(&p, DEV_CHAR, ACC_WRITE, 1, 3), 1);
        assert_eq!(interpret(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0);
        assert_eq!(interpret(&device_program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn unconditional_rule_cuts_the_program() {
        let p = device_program(&[
            rule(false, Some(DEV_CHAR), Some(1), Some(3), ACC_ALL),
            rule(true, None, None, None, ACC_ALL),
        ]);
        // 6 prologue + mov + exit: the earlier deny is unreachable and not emitted.
        assert_eq!(p.len(), 8);
        assert_eq!(interpret(&p, DEV_CHAR, ACC_WRITE, 1, 3), 1);
    }
}
