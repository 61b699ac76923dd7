//! One exec channel on a node's SSH session: the sudo prompt answered, the
//! files the script asks for (`KICK-NEED`) sent, the script's `KICK-READY`
//! line awaited before its stdin is sent, stdout and stderr collected up to a
//! cap, and the exit status or signal read.

use russh::ChannelMsg;
use secrecy::{ExposeSecret, SecretString};

use crate::cache::TaskFile;

use super::scripts::{NEED, READY};

/// How sudo went, when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// sudo asked for a password the connection does not have.
    NoPassword,
    /// sudo said the password was wrong.
    BadPassword,
    /// sudo refused the user (`not in the sudoers file`, `not allowed`,
    /// `must have a tty`); the line it printed.
    Denied(String),
}

/// A finished channel.
#[derive(Debug, Default)]
pub struct Finished {
    pub stdout: Vec<u8>,
    /// Without sudo's prompt and the `KICK-*` lines.
    pub stderr: Vec<u8>,
    /// `KICK-*` lines the script printed on stderr, in order.
    pub markers: Vec<String>,
    /// The PID the script reported when it got going.
    pub ready_pid: Option<u32>,
    /// The files the script asked for could not be sent (why).
    pub upload_error: Option<String>,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    /// Output past the cap was dropped.
    pub overflow: bool,
    /// sudo failed.
    pub escalation: Option<Escalation>,
    /// The channel ended without an exit status or signal: the connection
    /// was lost (or sshd died).
    pub lost: bool,
}

/// What the channel is given.
pub struct Input<'a> {
    /// Sent once the script is ready, then EOF.
    pub stdin: Vec<u8>,
    /// Answers sudo's prompt.
    pub sudo_password: Option<&'a SecretString>,
    /// The prompt sudo was given (`-p`), when escalating.
    pub prompt: Option<&'a str>,
    /// Cap per stream.
    pub max_output: usize,
    /// What answers `KICK-NEED`: the files its list names
    /// (`<sha256>/<name>...`), in its order, or why it cannot.
    pub upload: Option<&'a Upload<'a>>,
}

/// Gives the job's files that answer a `KICK-NEED` list, or why it cannot.
pub type Upload<'a> = dyn Fn(&str) -> Result<Vec<&'a TaskFile>, String> + Sync + 'a;

/// Streams `files` as the run script reads them: each file's size on a
/// line, its bytes, then the sha256 of the bytes sent, which the script
/// compares with the one it asked for. Read as they are sent, never whole
/// into memory: a first job on hundreds of nodes at once would hold every
/// node's copy. A file that changed since the job started is refused here
/// (the node refuses it too, on the sha256 line).
async fn send_files(
    channel: &russh::Channel<russh::client::Msg>,
    files: &[&TaskFile],
) -> Result<(), String> {
    use sha2::Digest as _;
    use tokio::io::AsyncReadExt as _;
    for want in files {
        let path = want.source.display();
        let mut file = tokio::fs::File::open(&want.source)
            .await
            .map_err(|e| format!("could not read the task file {path}: {e}"))?;
        let lost = |e: russh::Error| format!("the connection failed while sending {path}: {e}");
        channel
            .data_bytes(format!("{}\n", want.size).into_bytes())
            .await
            .map_err(lost)?;
        let mut hash = sha2::Sha256::new();
        let mut left = want.size;
        let mut buf = vec![0u8; 32 * 1024];
        while left > 0 {
            let room = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file
                .read(&mut buf[..room])
                .await
                .map_err(|e| format!("could not read the task file {path}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "the task file {path} is shorter than when the job started"
                ));
            }
            hash.update(&buf[..n]);
            channel.data_bytes(buf[..n].to_vec()).await.map_err(lost)?;
            left -= n as u64;
        }
        let sent = hex::encode(hash.finalize());
        channel
            .data_bytes(format!("{sent}\n").into_bytes())
            .await
            .map_err(lost)?;
        if sent != want.sha256 {
            return Err(format!(
                "the task file {path} changed after the job started (sha256 {sent}, expected {})",
                want.sha256
            ));
        }
    }
    Ok(())
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize, overflow: &mut bool) {
    let room = cap.saturating_sub(buf.len());
    if data.len() > room {
        *overflow = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

/// Reads stderr as it comes: whole lines are checked for the markers and for
/// sudo's answers; a partial line is checked for the prompt.
struct Stderr {
    partial: Vec<u8>,
    /// `KICK-READY` was seen.
    ready: bool,
    /// `KICK-NEED` was seen.
    needed: bool,
}

enum Event {
    Prompt,
    /// The script is running (sudo is behind it) and lacks these files.
    Need(Option<u32>, String),
    Ready(Option<u32>),
    Sudo(Escalation),
}

impl Stderr {
    fn feed(
        &mut self,
        data: &[u8],
        out: &mut Finished,
        prompt: Option<&str>,
        cap: usize,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        // Past sudo: no prompt nor sudo message can come any more.
        let ready = self.ready || self.needed;
        self.partial.extend_from_slice(data);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim_end();
            if trimmed.starts_with("KICK-") {
                if trimmed.starts_with(READY) && !self.ready {
                    self.ready = true;
                    let pid = trimmed
                        .split_whitespace()
                        .nth(2)
                        .and_then(|p| p.parse().ok());
                    out.ready_pid = out.ready_pid.or(pid);
                    events.push(Event::Ready(pid));
                } else if let Some(rest) = trimmed.strip_prefix(NEED)
                    && !self.ready
                    && !self.needed
                {
                    self.needed = true;
                    let mut words = rest.split_whitespace();
                    let pid = words.next().and_then(|p| p.parse().ok());
                    out.ready_pid = pid;
                    events.push(Event::Need(pid, words.collect::<Vec<_>>().join(" ")));
                }
                out.markers.push(trimmed.to_owned());
                continue;
            }
            if !ready {
                if trimmed.contains("Sorry, try again") {
                    events.push(Event::Sudo(Escalation::BadPassword));
                    continue;
                }
                if trimmed.contains("is not in the sudoers file")
                    || trimmed.contains("is not allowed to execute")
                    || trimmed.contains("must have a tty")
                    || trimmed.contains("a password is required")
                {
                    events.push(Event::Sudo(Escalation::Denied(trimmed.to_owned())));
                    continue;
                }
            }
            push_capped(&mut out.stderr, &line, cap, &mut out.overflow);
        }
        if let Some(p) = prompt
            && !ready
            && self.partial.ends_with(p.as_bytes())
        {
            self.partial.clear();
            events.push(Event::Prompt);
        }
        events
    }

    fn finish(&mut self, out: &mut Finished, cap: usize) {
        let rest = std::mem::take(&mut self.partial);
        push_capped(&mut out.stderr, &rest, cap, &mut out.overflow);
    }
}

/// Drives `channel` (already `exec`ed) to its end. `on_ready` is told the
/// script's PID the moment it is known (the run's stop needs it early).
pub async fn drive(
    mut channel: russh::Channel<russh::client::Msg>,
    input: Input<'_>,
    mut on_ready: impl FnMut(Option<u32>),
) -> Finished {
    let mut out = Finished::default();
    let mut stderr = Stderr {
        partial: Vec::new(),
        ready: false,
        needed: false,
    };
    let mut stdin = Some(input.stdin);
    let mut prompts = 0;
    loop {
        let Some(msg) = channel.wait().await else {
            break;
        };
        match msg {
            ChannelMsg::Data { data } => {
                push_capped(&mut out.stdout, &data, input.max_output, &mut out.overflow);
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                let events = stderr.feed(&data, &mut out, input.prompt, input.max_output);
                for e in events {
                    match e {
                        Event::Prompt => {
                            prompts += 1;
                            let Some(pw) = input.sudo_password.filter(|_| prompts == 1) else {
                                // No password, or a second prompt after a
                                // wrong one: end sudo's wait with EOF.
                                if out.escalation.is_none() {
                                    out.escalation = Some(if prompts == 1 {
                                        Escalation::NoPassword
                                    } else {
                                        Escalation::BadPassword
                                    });
                                }
                                let _ = channel.eof().await;
                                continue;
                            };
                            let line = format!("{}\n", pw.expose_secret());
                            let _ = channel.data_bytes(line.into_bytes()).await;
                        }
                        Event::Sudo(why) => {
                            out.escalation.get_or_insert(why);
                            let _ = channel.eof().await;
                        }
                        Event::Need(pid, list) => {
                            on_ready(pid);
                            let sent = match input.upload.map(|f| f(&list)) {
                                Some(Ok(files)) => send_files(&channel, &files).await,
                                Some(Err(why)) => Err(why),
                                None => Err("nothing here can send the task's files".into()),
                            };
                            if let Err(why) = sent {
                                out.upload_error = Some(why);
                                let _ = channel.eof().await;
                            }
                        }
                        Event::Ready(pid) => {
                            // Told already at KICK-NEED: the same script.
                            if !stderr.needed {
                                on_ready(pid);
                            }
                            if let Some(bytes) = stdin.take() {
                                if !bytes.is_empty() {
                                    let _ = channel.data_bytes(bytes).await;
                                }
                                let _ = channel.eof().await;
                            }
                        }
                    }
                }
            }
            ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                out.exit_signal = Some(format!("{signal_name:?}"));
            }
            _ => {}
        }
    }
    stderr.finish(&mut out, input.max_output);
    out.lost = out.exit_status.is_none() && out.exit_signal.is_none();
    out
}
