//! [`SettingsArgs`]: one global `--option` per setting of the library's
//! table ([`nscache::settings::OPTIONS`]), parsed by the library's own
//! [`Settings::set`]: the command line adds nothing but the flags.

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches};
use nscache::settings::OPTIONS;
use nscache::{CacheError, Settings};

/// The cache settings given on the command line, by option name, in the
/// order of [`OPTIONS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsArgs {
    given: Vec<(&'static str, String)>,
}

impl SettingsArgs {
    /// The library's defaults, then its environment variables, then these flags.
    pub fn resolve(&self) -> Result<Settings, CacheError> {
        let mut settings = Settings::from_env()?;
        for (name, value) in &self.given {
            settings.set(name, value).map_err(|e| match e {
                CacheError::Config(m) => CacheError::Config(format!("--{m}")),
                other => other,
            })?;
        }
        Ok(settings)
    }
}

impl FromArgMatches for SettingsArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = SettingsArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for option in OPTIONS {
            if let Some(value) = matches.get_one::<String>(option.name) {
                self.given.retain(|(name, _)| *name != option.name);
                self.given.push((option.name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for SettingsArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        OPTIONS.iter().fold(cmd, |cmd, option| {
            let mut arg = Arg::new(option.name)
                .long(option.name)
                .global(true)
                .action(ArgAction::Set)
                .value_name(option.value_name)
                .help(format!("{} [env: {}]", option.help, option.env))
                .help_heading("Cache settings");
            if option.value_name == "BOOL" {
                // `--l1` alone means true; `--l1=false` turns it off.
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true");
            }
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
