//! A throw-away apt repository for the package tasks' real-apt tests: tiny packages the suite
//! builds itself (dpkg-deb), served from a local `file:` source it adds under
//! /etc/apt/sources.list.d and removes again, together with the packages it installed and the
//! package lists apt fetched for it. Nothing else on the machine is installed or updated.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository and everything it put on the machine; removed on drop.
#[derive(Debug)]
pub struct AptRepo {
    dir: tempfile::TempDir,
    list: PathBuf,
    packages: Vec<String>,
}

fn run(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&crate::run_ok(cmd).stdout).into_owned()
}

impl AptRepo {
    /// Whether this machine can host the tests: root, apt-get, dpkg-deb and apt-ftparchive.
    pub fn available() -> bool {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        });
        root && [
            "/usr/bin/apt-get",
            "/usr/bin/dpkg-deb",
            "/usr/bin/apt-ftparchive",
        ]
        .iter()
        .all(|p| Path::new(p).is_file())
    }

    /// An empty repository; `tag` goes into the source file's name.
    pub fn new(tag: &str) -> AptRepo {
        let dir = tempfile::Builder::new()
            .prefix("kick-apt-repo-")
            .tempdir()
            .expect("repo dir");
        // apt's sandbox user reads file: sources; let it, so apt does not fall back to root.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod repo dir");
        std::fs::create_dir(dir.path().join("pool")).unwrap();
        AptRepo {
            list: PathBuf::from(format!(
                "/etc/apt/sources.list.d/kick-e2e-{tag}-{}.list",
                std::process::id()
            )),
            dir,
            packages: Vec::new(),
        }
    }

    /// Builds `name_version_all.deb` (one file under /usr/share/doc/NAME) outside the pool.
    pub fn build(&mut self, name: &str, version: &str) -> PathBuf {
        let root = self.dir.path().join(format!("build-{name}-{version}"));
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join(format!("usr/share/doc/{name}"))).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: kick e2e <e2e@kick.invalid>\n\
                 Section: misc\nPriority: optional\nDescription: kick end-to-end test package\n \
                 Built and removed by the kick test suite.\n"
            ),
        )
        .unwrap();
        std::fs::write(root.join(format!("usr/share/doc/{name}/VERSION")), version).unwrap();
        let deb = self.dir.path().join(format!("{name}_{version}_all.deb"));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb));
        if !self.packages.iter().any(|p| p == name) {
            self.packages.push(name.to_owned());
        }
        deb
    }

    /// Puts a built package into the repository's pool.
    pub fn add(&self, deb: &Path) {
        std::fs::copy(
            deb,
            self.dir.path().join("pool").join(deb.file_name().unwrap()),
        )
        .unwrap();
    }

    /// Installs a built package directly with dpkg.
    pub fn dpkg_install(&self, deb: &Path) {
        run(Command::new("dpkg").arg("-i").arg(deb));
    }

    /// Writes the index, adds the source, and fetches the lists of this source only.
    pub fn publish(&self) {
        let packages = run(Command::new("apt-ftparchive")
            .args(["packages", "pool"])
            .current_dir(self.dir.path()));
        std::fs::write(self.dir.path().join("Packages"), packages).unwrap();
        std::fs::write(
            &self.list,
            format!("deb [trusted=yes] file:{} ./\n", self.dir.path().display()),
        )
        .unwrap();
        run(Command::new("apt-get")
            .args(["-q", "update", "-o"])
            .arg(format!("Dir::Etc::sourcelist={}", self.list.display()))
            .args([
                "-o",
                "Dir::Etc::sourceparts=-",
                "-o",
                "APT::Get::List-Cleanup=0",
            ]));
    }

    /// The installed version of a package, `None` when not installed.
    pub fn installed(name: &str) -> Option<String> {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}|${Version}", name])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (status, version) = text.split_once('|')?;
        status.ends_with(" installed").then(|| version.to_owned())
    }

    /// apt's list files fetched for this source (named after its path).
    fn fetched_lists(&self) -> Vec<PathBuf> {
        let stem = self.dir.path().display().to_string().replace('/', "_");
        std::fs::read_dir("/var/lib/apt/lists")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&stem))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        for name in &self.packages {
            if AptRepo::installed(name).is_some() {
                let _ = Command::new("dpkg").args(["--purge", name]).output();
            }
        }
        let _ = std::fs::remove_file(&self.list);
        for f in self.fetched_lists() {
            let _ = std::fs::remove_file(f);
        }
    }
}
