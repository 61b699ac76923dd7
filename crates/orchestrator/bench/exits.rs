//! When processes exit, as the kernel saw it: the process-events connector
//! (netlink `NETLINK_CONNECTOR`, group `CN_IDX_PROC`) reports every exit with
//! a `CLOCK_MONOTONIC` timestamp taken in `do_exit`. That is the start of the
//! exit-to-event latency; a time the task prints itself can be taken long
//! before the process really ends when a hundred processes share two cores.
//! Listening needs `CAP_NET_ADMIN` in the initial network namespace (root on
//! this machine); without it the bench falls back to the tasks' own stamps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const CN_MSG_HDR: usize = 20;

/// Exit times (CLOCK_MONOTONIC, ns) by process id, filled by a thread.
#[derive(Clone, Default)]
pub struct Exits {
    times: Arc<Mutex<HashMap<u32, u64>>>,
}

impl Exits {
    /// Starts listening; the error says why kernel exit times are unavailable.
    pub fn listen() -> Result<Self, String> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            Some(netlink::CONNECTOR),
        )
        .map_err(|e| format!("netlink connector socket: {e}"))?;
        // A hundred exits a burst, plus every fork and exec on the machine.
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, 16 << 20)
            .or_else(|_| rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 16 << 20));
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC))
            .map_err(|e| format!("binding the process-events connector: {e}"))?;
        let mut msg = Vec::with_capacity(NLMSG_HDR + CN_MSG_HDR + 4);
        let len = (NLMSG_HDR + CN_MSG_HDR + 4) as u32;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // payload length
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        rustix::net::send(&fd, &msg, SendFlags::empty())
            .map_err(|e| format!("subscribing to process events: {e}"))?;
        let exits = Self::default();
        let times = exits.times.clone();
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
                        Ok((n, _)) => n,
                        // ENOBUFS: some events were dropped; keep going
                        // (their nodes will lack an exit time and be counted).
                        Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::INTR) => continue,
                        Err(_) => return,
                    };
                    let mut off = 0;
                    while let Some((len, exit)) = parse(buf.get(off..n).unwrap_or(&[])) {
                        if let Some((pid, ts)) = exit
                            && let Ok(mut t) = times.lock()
                        {
                            t.insert(pid, ts);
                        }
                        off += len;
                    }
                }
            })
            .map_err(|e| format!("cannot start the exits thread: {e}"))?;
        Ok(exits)
    }

    /// Forgets the exits seen so far (process ids get reused).
    pub fn clear(&self) {
        if let Ok(mut t) = self.times.lock() {
            t.clear();
        }
    }

    /// When `pid` exited, if the kernel said so.
    pub fn exit_time(&self, pid: u32) -> Option<u64> {
        self.times.lock().ok()?.get(&pid).copied()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One netlink message from the front of `b`: its aligned length, and the
/// process id and time if it is a process's (thread-group leader's) exit.
fn parse(b: &[u8]) -> Option<(usize, Option<(u32, u64)>)> {
    let len = u32_at(b, 0)? as usize;
    if len < NLMSG_HDR || len > b.len() {
        return None;
    }
    let aligned = len.div_ceil(4) * 4;
    let ev = NLMSG_HDR + CN_MSG_HDR;
    let exit = (|| {
        if u32_at(b, NLMSG_HDR)? != CN_IDX_PROC || u32_at(b, ev)? != PROC_EVENT_EXIT {
            return None;
        }
        let ts = u64::from_ne_bytes(b.get(ev + 8..ev + 16)?.try_into().ok()?);
        let (pid, tgid) = (u32_at(b, ev + 16)?, u32_at(b, ev + 20)?);
        (pid == tgid).then_some((tgid, ts))
    })();
    Some((aligned.min(b.len()), exit))
}

/// Now on the clock the kernel stamps exits with.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process-events message as the kernel lays it out.
    fn message(what: u32, ts: u64, pid: u32, tgid: u32) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&ts.to_ne_bytes());
        for v in [pid, tgid, 0, 17, 1, 1] {
            ev.extend_from_slice(&v.to_ne_bytes());
        }
        let mut m = Vec::new();
        let len = (NLMSG_HDR + CN_MSG_HDR + ev.len()) as u32;
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&ev);
        m
    }

    #[test]
    fn exits_of_processes_are_read_and_other_events_skipped() {
        let exit = message(PROC_EVENT_EXIT, 123_456_789, 4242, 4242);
        let fork = message(1, 5, 99, 99);
        let thread_exit = message(PROC_EVENT_EXIT, 7, 4243, 4242);
        let mut all = [exit.clone(), fork, thread_exit].concat();
        let (len, got) = parse(&all).unwrap();
        assert_eq!((len, got), (exit.len(), Some((4242, 123_456_789))));
        let (len2, got) = parse(&all[len..]).unwrap();
        assert_eq!(got, None);
        assert_eq!(parse(&all[len + len2..]).unwrap().1, None);
        // Truncated or garbage input ends the walk without panicking.
        all.truncate(exit.len() - 3);
        assert_eq!(parse(&all), None);
        assert_eq!(parse(&[0xff; 7]), None);
        assert_eq!(parse(&[0; 64]), None);
    }
}
