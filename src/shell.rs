//! The interactive SQL shell of `strata sql`.

use anyhow::Context;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use strata_query::QuerySession;

use crate::cli::Format;
use crate::sql_record::SqlRecorder;

const HELP: &str = "\
Statements end with ';' and may span lines.
  \\d           list tables and views
  \\d NAME      describe a table
  \\stats       toggle file/byte statistics after each query
  \\q           quit (or Ctrl-D)";

/// Reads statements until `\q` or end of input, printing each result as a table.
/// Each statement is recorded by `recorder`.
pub async fn run(session: &QuerySession, recorder: &SqlRecorder) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new().context("cannot start the line editor")?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".strata_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path); // no history yet is fine
    }
    eprintln!(
        "strata sql: {} files, {} rows at commit {}. \\? for help.",
        session.snapshot.files.len(),
        session.snapshot.total_rows(),
        session.snapshot.seq
    );
    let mut statement = String::new();
    let mut stats = false;
    loop {
        let prompt = if statement.is_empty() {
            "strata> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if statement.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut words = trimmed.split_whitespace();
            let command = words.next().unwrap_or_default();
            let sql = match (command, words.next()) {
                ("\\q", _) => break,
                ("\\?" | "\\h", _) => {
                    eprintln!("{HELP}");
                    continue;
                }
                ("\\stats", _) => {
                    stats = !stats;
                    eprintln!("statistics {}", if stats { "on" } else { "off" });
                    continue;
                }
                ("\\d", None) => "SELECT table_name, table_type FROM information_schema.tables \
                     WHERE table_schema = 'public' ORDER BY table_name"
                    .to_string(),
                ("\\d", Some(name)) => format!(
                    "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                     WHERE table_name = '{}' ORDER BY ordinal_position",
                    name.replace('\'', "''")
                ),
                _ => {
                    eprintln!("unknown command {command}; \\? for help");
                    continue;
                }
            };
            show(session, recorder, &sql, false).await;
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut statement);
        let _ = editor.add_history_entry(sql.trim());
        show(session, recorder, &sql, stats).await;
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path); // losing history is not worth failing the session
    }
    Ok(())
}

/// Runs one statement and prints its result as a table, or its error; the shell goes on either way.
async fn show(session: &QuerySession, recorder: &SqlRecorder, sql: &str, stats: bool) {
    let stdout: Box<dyn std::io::Write + Send> = Box::new(std::io::stdout());
    let outputs = vec![(Format::Table, stdout)];
    if let Err(e) = crate::sql::execute(session, recorder, sql, outputs, stats).await {
        eprintln!("error: {e:#}");
    }
}
