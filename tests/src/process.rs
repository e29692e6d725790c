//! Browser processes and what they start, ended together.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the command's process lead a process group of its own, so that
/// dropping a [`crate::browser::Browser`] ends it and everything it
/// started (Firefox's content processes, `xvfb-run`'s X server and
/// WebKitWebDriver's MiniBrowser, a `pulseaudio`).
pub(crate) fn own_group(command: &mut Command) -> &mut Command {
    command.process_group(0)
}
