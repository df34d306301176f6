//! Who local task processes run as. A task's command is whatever its registration says, so a
//! server running as root would run everyone's code as root: with the `task_user` setting the
//! process and warm plugins start tasks as that (unprivileged) user instead.
//!
//! What the task user needs, and gets here: its attempt's working folder (a `home` folder
//! inside the attempt's folder, which stays the server's so the markers `started`, `pid` and
//! `exit` cannot be replaced by links), its output and raw output folders (chowned when they
//! are local) and read access to the inputs and code bundles (the storage root's default
//! `0755` folders and `0644` files give it). The supplementary groups of the server are dropped
//! (std's `Command::uid` calls `setgroups(0)` when it may), so the task keeps none of root's
//! groups.

use std::path::Path;

use nix::unistd::{Uid, User};

#[derive(Debug, thiserror::Error)]
pub enum TaskUserError {
    #[error("task_user {0:?} is not a user of this machine")]
    Unknown(String),
    #[error("cannot look up task_user {name:?}: {reason}")]
    Lookup { name: String, reason: String },
    #[error(
        "task_user is {wanted:?} but the server runs as {current:?} (uid {uid}), which cannot \
         start processes as another user: run the server as root, or as {wanted:?}, or remove \
         the task_user setting"
    )]
    NotRoot {
        wanted: String,
        current: String,
        uid: u32,
    },
}

/// The unprivileged user tasks run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TaskUser {
    /// The user named `name`, from the machine's user database.
    pub fn lookup(name: &str) -> Result<Self, TaskUserError> {
        let user = User::from_name(name)
            .map_err(|e| TaskUserError::Lookup {
                name: name.to_string(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| TaskUserError::Unknown(name.to_string()))?;
        Ok(Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }

    /// Who tasks run as, from the `task_user` setting and who the server runs as, decided at
    /// start: `Some` when the server is root and a user is set (tasks switch to it); `None`
    /// when tasks run as the server's own user (with a warning when that is root). A server
    /// that is not root cannot switch users, so naming another user is an error, not a
    /// setting silently ignored.
    pub fn from_setting(setting: Option<&str>) -> Result<Option<Self>, TaskUserError> {
        let setting = setting.map(str::trim).filter(|s| !s.is_empty());
        let server_uid = Uid::effective();
        match setting {
            None => {
                if server_uid.is_root() {
                    tracing::warn!(
                        "the server runs as root and no task_user is set: local tasks run as \
                         root; set task_user (ALULA_TASK_USER) to an unprivileged user"
                    );
                }
                Ok(None)
            }
            Some(name) => {
                let user = Self::lookup(name)?;
                if server_uid.is_root() {
                    // Root as the task user is no containment, but it is what was asked.
                    Ok((user.uid != 0).then_some(user))
                } else if user.uid == server_uid.as_raw() {
                    Ok(None)
                } else {
                    let current = User::from_uid(server_uid)
                        .ok()
                        .flatten()
                        .map(|u| u.name)
                        .unwrap_or_else(|| server_uid.to_string());
                    Err(TaskUserError::NotRoot {
                        wanted: user.name,
                        current,
                        uid: server_uid.as_raw(),
                    })
                }
            }
        }
    }

    /// Makes `command` start as this user, with `home` as its `HOME`.
    pub fn apply(&self, command: &mut tokio::process::Command, home: &Path) {
        command
            .uid(self.uid)
            .gid(self.gid)
            .env("HOME", home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
    }

    /// Gives `path` (a folder the server just made for the task) to this user. Not following
    /// a link: the folder is the server's own, so a link there is not something to hand over.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
    }

    /// Creates `path` (and its parents, which stay the server's) and gives it to this user.
    pub fn make_folder(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(path)?;
        self.give(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_are_refused_by_name() {
        let err = TaskUser::lookup("no-such-user-alula").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "task_user \"no-such-user-alula\" is not a user of this machine"
        );
        let err = TaskUser::from_setting(Some("no-such-user-alula")).expect_err("unknown");
        assert!(matches!(err, TaskUserError::Unknown(_)), "{err}");
    }

    #[test]
    fn no_setting_means_the_server_user() {
        assert_eq!(TaskUser::from_setting(None).expect("no setting"), None);
        assert_eq!(TaskUser::from_setting(Some("  ")).expect("blank"), None);
    }

    #[test]
    fn the_server_user_needs_no_switch_and_others_need_root() {
        let me = User::from_uid(Uid::effective())
            .expect("user database")
            .expect("the test runs as a known user");
        let decided = TaskUser::from_setting(Some(&me.name));
        if Uid::effective().is_root() {
            // Root as the task user is no switch at all.
            assert_eq!(decided.expect("root"), None);
            let nobody = TaskUser::from_setting(Some("nobody"))
                .expect("nobody exists")
                .expect("root switches to nobody");
            assert_eq!(nobody.uid, 65534);
        } else {
            assert_eq!(decided.expect("the server's own user"), None);
            let err = TaskUser::from_setting(Some("root")).expect_err("not root");
            assert!(err.to_string().contains("run the server as root"), "{err}");
        }
    }
}
