//! Puppet settings the task needs (lockfiles, summary file, noop, server),
//! resolved from `puppet.conf` without starting Ruby.
//!
//! This mirrors Puppet's own rules: `[agent]` overrides `[main]` (lines before
//! any section belong to `[main]`), values lose surrounding quotes and a
//! trailing `{owner = ..., mode = ...}` block, `$name`/`${name}` interpolate
//! other settings, and defaults depend on the packaging: the puppetlabs AIO
//! layout (`/etc/puppetlabs`, `/opt/puppetlabs`) or the Debian one
//! (`/etc/puppet`, `/var/cache/puppet`). In both, `publicdir` (and so
//! `lastrunfile`) does not follow `vardir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::sysroot::SysRoot;

/// Which packaging's defaults apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// puppetlabs all-in-one packages (`/opt/puppetlabs`).
    Aio,
    /// Distribution packages (Debian's `puppet-agent`).
    Distro,
}

impl Layout {
    /// The layout of the puppet installation `bin` belongs to, as far as the
    /// file system tells it without starting Ruby; `None` when it cannot tell
    /// (then puppet itself must be asked, see [`crate::probe`]).
    ///
    /// The layout is compiled into puppet (its `run_mode.rb`), not implied by
    /// where the executable is: a Debian puppet reached through
    /// `/opt/puppetlabs/bin/puppet` still uses `/etc/puppet`. So the answer is
    /// only given when nothing on the node contradicts it: an executable under
    /// `/opt/puppetlabs` with no Debian confdir is AIO; one elsewhere with no
    /// `/opt/puppetlabs` and no AIO confdir is Debian's.
    pub fn detect(bin: &Path, sys: &SysRoot, root: bool, home: &str) -> Option<Layout> {
        let opt = sys.path("/opt/puppetlabs");
        let real = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
        let aio_bin = bin.starts_with(&opt) || real.starts_with(&opt);
        let confdir_exists = |layout: Layout| {
            let [(_, confdir), ..] = layout.defaults(root, home, sys);
            Path::new(&confdir).is_dir()
        };
        if aio_bin && !confdir_exists(Layout::Distro) {
            Some(Layout::Aio)
        } else if !aio_bin && !opt.exists() && !confdir_exists(Layout::Aio) {
            Some(Layout::Distro)
        } else {
            None
        }
    }

    /// Puppet's built-in directory defaults for this layout; `root` selects
    /// the system directories, else those under `home`.
    fn defaults(self, root: bool, home: &str, sys: &SysRoot) -> [(&'static str, String); 5] {
        let h = |p: &str| format!("{home}/{p}");
        let s = |p: &str| sys.path(p).display().to_string();
        match (self, root) {
            (Layout::Aio, true) => [
                ("confdir", s("/etc/puppetlabs/puppet")),
                ("vardir", s("/opt/puppetlabs/puppet/cache")),
                ("publicdir", s("/opt/puppetlabs/puppet/public")),
                ("rundir", s("/var/run/puppetlabs")),
                ("ssldir", "$confdir/ssl".into()),
            ],
            (Layout::Aio, false) => [
                ("confdir", h(".puppetlabs/etc/puppet")),
                ("vardir", h(".puppetlabs/opt/puppet/cache")),
                ("publicdir", h(".puppetlabs/opt/puppet/public")),
                ("rundir", h(".puppetlabs/var/run")),
                ("ssldir", "$confdir/ssl".into()),
            ],
            (Layout::Distro, true) => [
                ("confdir", s("/etc/puppet")),
                ("vardir", s("/var/cache/puppet")),
                ("publicdir", s("/var/cache/puppet/public")),
                ("rundir", s("/run/puppet")),
                ("ssldir", s("/var/lib/puppet/ssl")),
            ],
            (Layout::Distro, false) => [
                ("confdir", h(".puppet/etc")),
                ("vardir", h(".puppet/cache")),
                ("publicdir", h(".puppet/cache/public")),
                ("rundir", h(".puppet/var/run")),
                ("ssldir", "$confdir/ssl".into()),
            ],
        }
    }
}

/// The `[main]` and `[agent]` sections of a puppet.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PuppetConf {
    main: BTreeMap<String, String>,
    agent: BTreeMap<String, String>,
}

impl PuppetConf {
    /// Parses puppet.conf text the way Puppet's IniFile does; lines it
    /// cannot parse are ignored, as are sections other than main and agent.
    pub fn parse(text: &str) -> PuppetConf {
        let mut conf = PuppetConf::default();
        let mut section = Some("main");
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                section = match name {
                    "main" => Some("main"),
                    "agent" => Some("agent"),
                    _ => None,
                };
                continue;
            }
            let Some((key, value)) = t.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let map = match section {
                Some("main") => &mut conf.main,
                Some("agent") => &mut conf.agent,
                _ => continue,
            };
            map.insert(key.to_owned(), clean_value(value));
        }
        conf
    }

    /// The value an agent run sees: `[agent]`, else `[main]`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.agent
            .get(key)
            .or_else(|| self.main.get(key))
            .map(String::as_str)
    }
}

/// Strips what Puppet strips: one leading and one trailing quote, a
/// `{owner/group/mode}` block, surrounding whitespace.
fn clean_value(raw: &str) -> String {
    let mut v = raw.trim();
    if let (Some(open), true) = (v.find('{'), v.ends_with('}')) {
        v = v[..open].trim_end();
    }
    let v = v.strip_prefix(['"', '\'']).unwrap_or(v);
    let v = v.strip_suffix(['"', '\'']).unwrap_or(v);
    v.trim_end().to_owned()
}

/// The settings the task uses, fully interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The confdir puppet.conf was read from.
    pub confdir: PathBuf,
    /// `vardir`.
    pub vardir: PathBuf,
    /// `statedir`.
    pub statedir: PathBuf,
    /// `publicdir`.
    pub publicdir: PathBuf,
    /// `lastrunfile`: last_run_summary.yaml.
    pub lastrunfile: PathBuf,
    /// `lastrunreport`: last_run_report.yaml.
    pub lastrunreport: PathBuf,
    /// `agent_catalog_run_lockfile`.
    pub catalog_lock: PathBuf,
    /// `agent_disabled_lockfile`.
    pub disabled_lock: PathBuf,
    /// `noop` as configured for agent runs.
    pub noop: bool,
    /// `server`, if set.
    pub server: Option<String>,
    /// `server_list`, if set and non-empty.
    pub server_list: Option<String>,
    /// `environment`, if set.
    pub environment: Option<String>,
}

/// Where settings are resolved from.
#[derive(Debug, Clone)]
pub struct Context {
    /// Packaging defaults.
    pub layout: Layout,
    /// `PSICK_PUPPET_CONFDIR`, when given.
    pub confdir: Option<PathBuf>,
    /// Whether the task runs as root.
    pub root: bool,
    /// `$HOME`, for `~` and non-root defaults.
    pub home: String,
    /// Where the system directories of the defaults are.
    pub sys: SysRoot,
}

impl Context {
    /// The confdir puppet will use.
    pub fn confdir(&self) -> PathBuf {
        self.confdir.clone().unwrap_or_else(|| {
            let [(_, confdir), ..] = self.layout.defaults(self.root, &self.home, &self.sys);
            PathBuf::from(confdir)
        })
    }

    /// Resolves the settings from the given puppet.conf contents (`None`
    /// when the file does not exist).
    pub fn resolve(&self, conf: &PuppetConf) -> Settings {
        let confdir = self.confdir();
        let mut defaults: BTreeMap<&str, String> = self
            .layout
            .defaults(self.root, &self.home, &self.sys)
            .into_iter()
            .collect();
        defaults.insert("confdir", confdir.display().to_string());
        defaults.insert("statedir", "$vardir/state".into());
        defaults.insert("lastrunfile", "$publicdir/last_run_summary.yaml".into());
        defaults.insert("lastrunreport", "$statedir/last_run_report.yaml".into());
        defaults.insert(
            "agent_catalog_run_lockfile",
            "$statedir/agent_catalog_run.lock".into(),
        );
        defaults.insert(
            "agent_disabled_lockfile",
            "$statedir/agent_disabled.lock".into(),
        );
        let r = Resolver {
            conf,
            defaults: &defaults,
            home: &self.home,
        };
        let path = |name: &str| PathBuf::from(r.value(name, 0).unwrap_or_default());
        let opt = |name: &str| r.value(name, 0).filter(|v| !v.is_empty());
        Settings {
            confdir,
            vardir: path("vardir"),
            statedir: path("statedir"),
            publicdir: path("publicdir"),
            lastrunfile: path("lastrunfile"),
            lastrunreport: path("lastrunreport"),
            catalog_lock: path("agent_catalog_run_lockfile"),
            disabled_lock: path("agent_disabled_lockfile"),
            noop: opt("noop").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            server: opt("server"),
            server_list: opt("server_list"),
            environment: opt("environment"),
        }
    }
}

struct Resolver<'a> {
    conf: &'a PuppetConf,
    defaults: &'a BTreeMap<&'a str, String>,
    home: &'a str,
}

impl Resolver<'_> {
    /// The interpolated value of a setting; `None` when neither puppet.conf
    /// nor the defaults know it.
    fn value(&self, name: &str, depth: u8) -> Option<String> {
        let raw = match name {
            // Puppet never takes confdir from the file it is reading.
            "confdir" => self.defaults.get(name).map(String::as_str),
            _ => self
                .conf
                .get(name)
                .or_else(|| self.defaults.get(name).map(String::as_str)),
        }?;
        let mut v = if depth < 16 {
            self.interpolate(raw, depth)
        } else {
            raw.to_owned()
        };
        if v == "~" || v.starts_with("~/") {
            v = format!("{}{}", self.home, &v[1..]);
        }
        Some(v)
    }

    fn interpolate(&self, raw: &str, depth: u8) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) if is_word(&braced[..end]) => (&braced[..end], end + 2),
                    _ => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match (name.is_empty(), self.value(name, depth + 1)) {
                (false, Some(v)) => out.push_str(&v),
                // Unknown variables stay as written, like Puppet leaves them.
                _ => out.push_str(&rest[i..i + 1 + consumed]),
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(layout: Layout, confdir: Option<&str>, root: bool) -> Context {
        Context {
            layout,
            confdir: confdir.map(PathBuf::from),
            root,
            home: "/home/u".into(),
            sys: SysRoot::default(),
        }
    }

    #[test]
    fn debian_defaults_match_puppet_config_print() {
        let s = ctx(Layout::Distro, None, true).resolve(&PuppetConf::default());
        assert_eq!(s.confdir, Path::new("/etc/puppet"));
        assert_eq!(s.statedir, Path::new("/var/cache/puppet/state"));
        assert_eq!(
            s.catalog_lock,
            Path::new("/var/cache/puppet/state/agent_catalog_run.lock")
        );
        assert_eq!(
            s.disabled_lock,
            Path::new("/var/cache/puppet/state/agent_disabled.lock")
        );
        assert_eq!(
            s.lastrunfile,
            Path::new("/var/cache/puppet/public/last_run_summary.yaml")
        );
        assert_eq!(
            s.lastrunreport,
            Path::new("/var/cache/puppet/state/last_run_report.yaml")
        );
        assert!(!s.noop);
        assert_eq!(s.server, None);
    }

    #[test]
    fn debian_non_root_defaults_match_puppet_config_print() {
        // `runuser -u nobody -- env HOME=... puppet config print` on Debian 7.23.
        let s = ctx(Layout::Distro, None, false).resolve(&PuppetConf::default());
        assert_eq!(s.confdir, Path::new("/home/u/.puppet/etc"));
        assert_eq!(s.vardir, Path::new("/home/u/.puppet/cache"));
        assert_eq!(s.statedir, Path::new("/home/u/.puppet/cache/state"));
        assert_eq!(
            s.lastrunfile,
            Path::new("/home/u/.puppet/cache/public/last_run_summary.yaml")
        );
    }

    #[test]
    fn aio_defaults() {
        let s = ctx(Layout::Aio, None, true).resolve(&PuppetConf::default());
        assert_eq!(s.confdir, Path::new("/etc/puppetlabs/puppet"));
        assert_eq!(
            s.catalog_lock,
            Path::new("/opt/puppetlabs/puppet/cache/state/agent_catalog_run.lock")
        );
        assert_eq!(
            s.lastrunfile,
            Path::new("/opt/puppetlabs/puppet/public/last_run_summary.yaml")
        );
        let u = ctx(Layout::Aio, None, false).resolve(&PuppetConf::default());
        assert_eq!(
            u.statedir,
            Path::new("/home/u/.puppetlabs/opt/puppet/cache/state")
        );
    }

    #[test]
    fn vardir_from_puppet_conf_moves_statedir_but_not_publicdir() {
        // Verified with `puppet config print --confdir` on Debian 7.23.
        let conf = PuppetConf::parse("[main]\nvardir = /tmp/n1/var\n");
        let s = ctx(Layout::Distro, Some("/tmp/n1/conf"), true).resolve(&conf);
        assert_eq!(s.confdir, Path::new("/tmp/n1/conf"));
        assert_eq!(s.statedir, Path::new("/tmp/n1/var/state"));
        // `puppet config print lastrunreport` for a simulated node.
        assert_eq!(
            s.lastrunreport,
            Path::new("/tmp/n1/var/state/last_run_report.yaml")
        );
        assert_eq!(
            s.catalog_lock,
            Path::new("/tmp/n1/var/state/agent_catalog_run.lock")
        );
        assert_eq!(
            s.lastrunfile,
            Path::new("/var/cache/puppet/public/last_run_summary.yaml")
        );
    }

    #[test]
    fn agent_overrides_main_and_interpolation_chains() {
        let conf = PuppetConf::parse(
            "# comment\nnoop = true\nserver = before-section\n\
             [main]\n  vardir = \"/srv/pp\" { owner = service, mode = 0750 }\n\
             publicdir=${vardir}/pub\nserver = main.example.com\n\
             [server]\nvardir = /ignored\n\
             [agent]\nnoop = FALSE\nstatedir = $vardir/st8\nserver_list = a:1,b\n\
             lastrunfile = $publicdir/summary-$certname.yaml\n\
             agent_disabled_lockfile = $confdir/disabled.lock\nenvironment = dev\n",
        );
        let s = ctx(Layout::Distro, Some("/c"), true).resolve(&conf);
        assert_eq!(s.vardir, Path::new("/srv/pp"));
        assert_eq!(s.statedir, Path::new("/srv/pp/st8"));
        assert_eq!(
            s.catalog_lock,
            Path::new("/srv/pp/st8/agent_catalog_run.lock")
        );
        assert_eq!(s.disabled_lock, Path::new("/c/disabled.lock"));
        // Unknown variables are left alone.
        assert_eq!(
            s.lastrunfile,
            Path::new("/srv/pp/pub/summary-$certname.yaml")
        );
        assert!(!s.noop);
        assert_eq!(s.server.as_deref(), Some("main.example.com"));
        assert_eq!(s.server_list.as_deref(), Some("a:1,b"));
        assert_eq!(s.environment.as_deref(), Some("dev"));
    }

    #[test]
    fn self_reference_does_not_loop_and_tilde_expands() {
        let conf =
            PuppetConf::parse("[agent]\nvardir = $vardir/x\npublicdir = ~/pub\nnoop = 'true'\n");
        let s = ctx(Layout::Distro, None, false).resolve(&conf);
        assert!(s.vardir.to_string_lossy().contains("$vardir"));
        assert_eq!(s.publicdir, Path::new("/home/u/pub"));
        assert!(s.noop);
    }

    /// A system root with the given directories and an executable `puppet`
    /// at `bin` (relative to the root).
    fn node(dirs: &[&str], bin: &str) -> (tempfile::TempDir, SysRoot, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        for dir in dirs {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        let bin = d.path().join(bin);
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let sys = SysRoot::at(d.path());
        (d, sys, bin)
    }

    #[test]
    fn layout_is_only_decided_when_nothing_contradicts_it() {
        let aio_bin = "opt/puppetlabs/bin/puppet";
        let debian_bin = "usr/bin/puppet";
        let cases = [
            // Debian's config with the binary at Debian's path: Debian.
            (&["etc/puppet"][..], debian_bin, Some(Layout::Distro)),
            // AIO config and binary: AIO.
            (&["etc/puppetlabs/puppet"][..], aio_bin, Some(Layout::Aio)),
            (&[][..], aio_bin, Some(Layout::Aio)),
            // The bug: an /opt/puppetlabs binary on a node configured the
            // Debian way must not be taken for AIO.
            (&["etc/puppet"][..], aio_bin, None),
            // An AIO config (or any /opt/puppetlabs) with another binary.
            (&["etc/puppetlabs/puppet"][..], debian_bin, None),
            (&["opt/puppetlabs/puppet"][..], debian_bin, None),
            (
                &["etc/puppet", "etc/puppetlabs/puppet"][..],
                debian_bin,
                None,
            ),
        ];
        for (dirs, bin, want) in cases {
            let (_d, sys, bin) = node(dirs, bin);
            assert_eq!(
                Layout::detect(&bin, &sys, true, "/nonexistent-home"),
                want,
                "{dirs:?} {}",
                bin.display()
            );
        }
    }

    #[test]
    fn a_symlink_into_opt_puppetlabs_counts_as_aio() {
        let (d, sys, target) = node(&[], "opt/puppetlabs/puppet/bin/puppet");
        let link = d.path().join("usr/local/bin/puppet");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(Layout::detect(&link, &sys, true, "/h"), Some(Layout::Aio));
        std::fs::create_dir_all(d.path().join("etc/puppet")).unwrap();
        assert_eq!(Layout::detect(&link, &sys, true, "/h"), None);
    }

    #[test]
    fn non_root_looks_at_the_users_confdirs() {
        let (d, sys, bin) = node(&[], "usr/bin/puppet");
        let home = d.path().join("home");
        std::fs::create_dir_all(home.join(".puppetlabs/etc/puppet")).unwrap();
        let home = home.display().to_string();
        assert_eq!(Layout::detect(&bin, &sys, false, &home), None);
        assert_eq!(
            Layout::detect(&bin, &sys, true, &home),
            Some(Layout::Distro)
        );
    }

    #[test]
    fn defaults_follow_the_system_root() {
        let mut c = ctx(Layout::Distro, None, true);
        c.sys = SysRoot::at("/t");
        let s = c.resolve(&PuppetConf::default());
        assert_eq!(s.confdir, Path::new("/t/etc/puppet"));
        assert_eq!(s.statedir, Path::new("/t/var/cache/puppet/state"));
        assert_eq!(
            s.lastrunreport,
            Path::new("/t/var/cache/puppet/state/last_run_report.yaml")
        );
    }
}
