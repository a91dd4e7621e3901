//! `strata serve --config FILE`: the file sets flags, the command line and
//! `STRATA_*` variables win over it, and a bad key or value stops the start
//! with the file named. Included by tests/serve.rs.

use super::*;

#[test]
fn a_config_file_sets_flags_that_the_command_line_and_variables_override() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "node-id = \"from-file\"\nsyslog-tcp = [\"acme@127.0.0.1:0\"]\nmax-body-mib = 1\nmemory-mib = 128\n",
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let server = ServerProcess::start(&archive, &["--config", path, "--node-id", "from-cli"]);
    assert!(
        server.banner.contains("node from-cli,"),
        "{}",
        server.banner
    );
    server.listener("syslog-tcp");
    let big = batch("big", 20_000);
    assert!(big.len() > 1 << 20);
    assert_eq!(
        server.post("/v1/events", &shipper, big.as_bytes()).status,
        413
    );
    assert!(server.terminate().success());

    let mut from_env = strata(&archive)
        .args(["serve", "--http", "127.0.0.1:0", "--config", path])
        .env("STRATA_NODE_ID", "from-env")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(from_env.stdout.take().unwrap());
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut banner).unwrap();
    assert!(banner.contains("node from-env,"), "{banner}");
    let stop = std::process::Command::new("kill")
        .arg(from_env.id().to_string())
        .status();
    assert!(stop.unwrap().success());
    assert!(from_env.wait().unwrap().success());

    for (text, expected) in [
        ("colour = \"blue\"\n", "unknown key `colour`"),
        ("memory-mib = 1\n", "memory-mib"),
        ("http = [\n", "strata.toml"),
        (
            "http = { port = 1 }\n",
            "expected a string, a number or a list",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = run_expect(strata(&archive).args(["serve", "--config", path]), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains("strata.toml"),
            "{text}: {stderr}"
        );
    }
}
