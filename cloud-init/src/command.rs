//! Commands as argv lists.
//!
//! cloud-init accepts a `runcmd`/`bootcmd` item either as a string, which it
//! pastes verbatim into a shell script, or as a list, whose every element it
//! shell-quotes before joining. Only the list form runs exactly what was
//! written, so [`Argv`] has no string form at all: the model cannot express a
//! shell command line.

use serde::Serialize;

use crate::Error;

/// A program and its arguments, executed without shell interpretation.
///
/// Serialises as a YAML sequence (`[netplan, apply]`), never as a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Argv(Vec<String>);

impl Argv {
    /// Builds an argv list; refuses an empty program (nothing to execute) and
    /// NUL bytes (which `execve` cannot pass and cloud-init would truncate).
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let program = program.into();
        if program.is_empty() {
            return Err(Error::EmptyCommand);
        }
        let argv: Vec<String> = std::iter::once(program)
            .chain(args.into_iter().map(Into::into))
            .collect();
        if let Some(bad) = argv.iter().find(|a| a.contains('\0')) {
            return Err(Error::InvalidArgument {
                arg: bad.clone(),
                context: "a command",
                reason: "contains NUL",
            });
        }
        Ok(Self(argv))
    }

    /// The program, so callers (the systemd renderer) can check it is an
    /// absolute path where a search path is not available.
    pub fn program(&self) -> &str {
        // `new` guarantees at least one element.
        self.0.first().map_or("", String::as_str)
    }

    /// All elements, program first, for renderers that need to quote them.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_program_and_nul() {
        assert!(matches!(Argv::new("", ["x"]), Err(Error::EmptyCommand)));
        assert!(matches!(
            Argv::new("echo", ["a\0b"]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn keeps_program_first() {
        let argv = Argv::new("systemctl", ["enable", "--now", "x.service"]).unwrap();
        assert_eq!(argv.program(), "systemctl");
        assert_eq!(argv.as_slice().len(), 4);
    }
}
