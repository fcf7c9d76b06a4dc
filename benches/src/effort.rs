//! How long a run measures: `--quick` (a smoke run of each suite, for CI),
//! the default (every suite within the 10-minute budget on a 2-core machine,
//! build included), `--thorough` (more runs per cell and more cells, for the
//! figures quoted in docs/).

/// The run's effort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Quick,
    Default,
    Thorough,
}

impl Effort {
    /// From the command line's flags.
    ///
    /// # Errors
    /// Both `--quick` and `--thorough`, or an unknown flag.
    pub fn from_args(args: &[String]) -> Result<Effort, String> {
        let mut effort = Effort::Default;
        for a in args.iter().filter(|a| a.starts_with("--")) {
            let next = match a.as_str() {
                "--quick" => Effort::Quick,
                "--thorough" => Effort::Thorough,
                other => {
                    return Err(format!(
                        "unknown flag `{other}` (known: --quick, --thorough)"
                    ))
                }
            };
            if effort != Effort::Default && effort != next {
                return Err("--quick and --thorough exclude each other".into());
            }
            effort = next;
        }
        Ok(effort)
    }

    /// As written in results.json.
    pub fn name(self) -> &'static str {
        match self {
            Effort::Quick => "quick",
            Effort::Default => "default",
            Effort::Thorough => "thorough",
        }
    }

    pub fn is_quick(self) -> bool {
        self == Effort::Quick
    }

    /// One of three values, by effort (runs per cell, requests per run, …).
    pub fn pick<T>(self, quick: T, default: T, thorough: T) -> T {
        match self {
            Effort::Quick => quick,
            Effort::Default => default,
            Effort::Thorough => thorough,
        }
    }
}
