//! `--config FILE`: the server's settings in a file, one `FANSWARM_*`
//! variable per line, as `deploy/fanswarm.env` and systemd's
//! `EnvironmentFile=` have them:
//!
//! ```text
//! # comments and blank lines are skipped
//! FANSWARM_LIBRARY=/srv/music
//! FANSWARM_ACME=music.example
//! FANSWARM_TURN_SECRET="quoted values lose their quotes"
//! ```
//!
//! A flag on the command line wins over the environment, which wins over
//! the file (`main.rs` applies that order); this module only reads.

/// One setting: its variable name and value, and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `FANSWARM_…`.
    pub name: String,
    /// The value, unquoted.
    pub value: String,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A line is neither a comment, blank, nor `NAME=value`.
    #[error("line {line}: expected FANSWARM_NAME=value, found {found:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        found: String,
    },
    /// A name that is not a fanswarm setting.
    #[error(
        "line {line}: {name} is not a setting (`signal-server --help` names each flag's variable)"
    )]
    Unknown {
        /// 1-based line number.
        line: usize,
        /// The name.
        name: String,
    },
    /// The same name twice.
    #[error("line {line}: {name} is set again (first on line {first})")]
    Repeated {
        /// 1-based line number of the second.
        line: usize,
        /// The name.
        name: String,
        /// Line of the first.
        first: usize,
    },
}

/// Reads `text`; `known` says whether a name is a setting.
pub fn parse(text: &str, known: impl Fn(&str) -> bool) -> Result<Vec<Setting>, ConfigError> {
    let mut settings: Vec<Setting> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(ConfigError::Syntax {
                line,
                found: raw.to_owned(),
            });
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::Syntax {
                line,
                found: raw.to_owned(),
            });
        }
        if !known(name) {
            return Err(ConfigError::Unknown {
                line,
                name: name.to_owned(),
            });
        }
        if let Some(first) = settings.iter().find(|s| s.name == name) {
            return Err(ConfigError::Repeated {
                line,
                name: name.to_owned(),
                first: first.line,
            });
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        settings.push(Setting {
            name: name.to_owned(),
            value: value.to_owned(),
            line,
        });
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        matches!(
            name,
            "FANSWARM_LIBRARY" | "FANSWARM_LISTEN" | "FANSWARM_TURN_SECRET"
        )
    }

    #[test]
    fn settings_comments_blanks_quotes_and_export() {
        let text = "# settings\n\nFANSWARM_LIBRARY=/srv/music\n  export FANSWARM_LISTEN = 0.0.0.0:443 \nFANSWARM_TURN_SECRET=\"a b=c\"\n";
        let settings = parse(text, known).unwrap();
        let pairs: Vec<(&str, &str, usize)> = settings
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str(), s.line))
            .collect();
        assert_eq!(
            pairs,
            [
                ("FANSWARM_LIBRARY", "/srv/music", 3),
                ("FANSWARM_LISTEN", "0.0.0.0:443", 4),
                ("FANSWARM_TURN_SECRET", "a b=c", 5),
            ]
        );
    }

    #[test]
    fn each_mistake_names_its_line() {
        assert_eq!(
            parse("FANSWARM_LIBRARY=/a\nlibrary /b\n", known),
            Err(ConfigError::Syntax {
                line: 2,
                found: "library /b".into()
            })
        );
        assert_eq!(
            parse("FANSWARM_LIBARY=/a\n", known),
            Err(ConfigError::Unknown {
                line: 1,
                name: "FANSWARM_LIBARY".into()
            })
        );
        assert_eq!(
            parse("FANSWARM_LIBRARY=/a\n\nFANSWARM_LIBRARY=/b\n", known),
            Err(ConfigError::Repeated {
                line: 3,
                name: "FANSWARM_LIBRARY".into(),
                first: 1
            })
        );
        assert!(matches!(
            parse("=x\n", known),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }
}
