//! `strata serve --config FILE`: every flag of `strata serve` as a TOML key
//! (the flag without its dashes: `http = "0.0.0.0:9200"`, `syslog-tcp =
//! ["acme@0.0.0.0:5514"]`, `memory-mib = 2048`). A flag on the command
//! line or its `STRATA_*` variable wins over the file. The file's values go
//! through the flags' own parsers, so they are checked exactly as flags are.

use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};

use crate::serve::ServeArgs;

/// Fills the flags of `args` that `matches` (the command line) left at their
/// defaults from the TOML file `args.config`, if any.
pub fn apply(args: &mut ServeArgs, matches: &ArgMatches) -> Result<(), String> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // The flags alone: no defaults and no variables, so that parsing the
    // file sets only what the file names.
    let flags = ServeArgs::augment_args(clap::Command::new("config").no_binary_name(true))
        .mut_args(|arg| arg.default_value(None::<&str>).env(None::<&str>));
    let mut argv = Vec::new();
    for (key, value) in &table {
        let arg = flags
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && in_file(key))
            .ok_or_else(|| unknown_key(&path, key, &flags))?;
        let given = matches.value_source(arg.get_id().as_str());
        if matches!(
            given,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        for value in scalars(value).map_err(|why| format!("{}: `{key}`: {why}", path.display()))? {
            argv.push(format!("--{key}"));
            argv.push(value);
        }
    }
    let from_file = flags.try_get_matches_from(argv).map_err(|e| {
        // clap's first line says what is wrong; the rest is about --help.
        let message = e.render().to_string();
        let message = message.lines().next().unwrap_or_default();
        let message = message.trim_start_matches("error: ");
        format!("{}: {message}", path.display())
    })?;
    args.update_from_arg_matches(&from_file)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A value as the flag values it stands for: a list gives one per item.
fn scalars(value: &toml::Value) -> Result<Vec<String>, &'static str> {
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(i) => Ok(vec![i.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                _ => Err("a list holds strings or numbers"),
            })
            .collect(),
        _ => Err("expected a string, a number or a list of them"),
    }
}

fn unknown_key(path: &Path, key: &str, flags: &clap::Command) -> String {
    let known: Vec<&str> = flags
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| in_file(long))
        .collect();
    format!(
        "{}: unknown key `{key}`; the keys are the flags of strata serve without their dashes: {}",
        path.display(),
        known.join(", ")
    )
}

/// Whether flag `long` may be set in the file.
fn in_file(long: &str) -> bool {
    !matches!(long, "config" | "help")
}
