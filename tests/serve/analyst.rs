//! An analyst reads every tenant's events with `user`, `src_ip`,
//! `session_id`, `host`, `message` and the text of `attrs` replaced by
//! keyed pseudonyms: usage patterns equal the auditor's up to a one-to-one
//! renaming, and no raw value appears in any answer, plan or error, over
//! HTTP or psql, before or after a restart and a key rotation. Included by
//! tests/serve.rs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::pg::{http_rows, psql_rows};
use super::tenants::{ask, rows};
use super::*;
use serde_json::Value;

const PERSONAL: [&str; 4] = ["user", "src_ip", "session_id", "host"];

/// Events, not the server's records of queries (which the queries add).
const DATA: &str = "action NOT LIKE 'archive_query%'";

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The personal values of each row, as `token` reads them, by tenant and
/// event id (of the rows whose id is theirs alone).
fn personal_by_event(
    server: &ServerProcess,
    token: &str,
) -> BTreeMap<(String, String), Vec<Option<String>>> {
    let sql = format!(
        "SELECT tenant, event_id, {} FROM events WHERE {DATA} AND event_id IN \
         (SELECT event_id FROM events GROUP BY event_id HAVING count(*) = 1)",
        PERSONAL.join(", ")
    );
    (rows(server, token, &sql).iter())
        .map(|row| {
            let key = (
                text(&row["tenant"]).unwrap(),
                text(&row["event_id"]).unwrap(),
            );
            (key, PERSONAL.iter().map(|c| text(&row[c])).collect())
        })
        .collect()
}

/// Whether `needle` occurs in `haystack` as a whole word (not inside a
/// longer run of letters and digits, such as a pseudonym's hex).
fn occurs_as_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn an_analyst_reads_usage_patterns_under_stable_pseudonyms_and_never_a_raw_value() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let analyst = add_user(&archive, "analyst", "analyst", &[]);
    // Generated events: some in files, some only in the server's memory.
    let filed = dir.path().join("filed.ndjson");
    generate(&filed, &["-n", "2000", "--tenants", "3", "--seed", "11"]);
    run_ok(strata(&archive).arg("ingest").arg(&filed));
    let sent = dir.path().join("sent.ndjson");
    generate(&sent, &["-n", "600", "--tenants", "3", "--seed", "12"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--pg", "127.0.0.1:0"]);
    let answer = server.post("/v1/events", &shipper, &std::fs::read(&sent).unwrap());
    assert_eq!(answer.json()["accepted"], 600, "{}", answer.text());

    // The same rows, renamed one to one: within a tenant each raw value has
    // one pseudonym in every column, distinct values distinct pseudonyms,
    // and the tenants' pseudonyms differ.
    let raw = personal_by_event(&server, &auditor);
    let seen = personal_by_event(&server, &analyst);
    assert_eq!(
        raw.keys().collect::<Vec<_>>(),
        seen.keys().collect::<Vec<_>>()
    );
    let mut renaming: HashMap<(String, String), String> = HashMap::new();
    let mut pseudonyms_of_tenant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, values) in &raw {
        for (value, pseudonym) in values.iter().zip(&seen[key]) {
            match (value, pseudonym) {
                (None, None) => {}
                (Some(value), Some(pseudonym)) => {
                    assert!(pseudonym.starts_with("anon-"), "{pseudonym}");
                    let earlier =
                        renaming.insert((key.0.clone(), value.clone()), pseudonym.clone());
                    assert!(
                        earlier.as_ref().is_none_or(|e| e == pseudonym),
                        "{value}: {earlier:?} and {pseudonym}"
                    );
                    pseudonyms_of_tenant
                        .entry(key.0.clone())
                        .or_default()
                        .insert(pseudonym.clone());
                }
                other => panic!("{key:?}: a null must stay null: {other:?}"),
            }
        }
    }
    for (tenant, pseudonyms) in &pseudonyms_of_tenant {
        let values = renaming.keys().filter(|(t, _)| t == tenant).count();
        assert_eq!(
            pseudonyms.len(),
            values,
            "{tenant}: two values share a pseudonym"
        );
    }
    let all: Vec<&BTreeSet<String>> = pseudonyms_of_tenant.values().collect();
    assert_eq!(all.len(), 3);
    assert!(all[0].is_disjoint(all[1]) && all[1].is_disjoint(all[2]) && all[0].is_disjoint(all[2]));
    let raw_values: BTreeSet<&String> = renaming.keys().map(|(_, v)| v).collect();

    // Pattern queries answer the same up to the renaming.
    for (column, sql) in [
        (
            "user",
            format!(
                "SELECT tenant, user AS v, count(*) AS n FROM events WHERE {DATA} GROUP BY tenant, user"
            ),
        ),
        (
            "src_ip",
            format!(
                "SELECT tenant, src_ip AS v, count(*) AS n FROM access WHERE {DATA} AND src_ip IS NOT NULL GROUP BY tenant, src_ip ORDER BY n DESC LIMIT 10"
            ),
        ),
        (
            "session_id",
            format!(
                "SELECT tenant, session_id AS v, count(DISTINCT action) AS n FROM events WHERE {DATA} AND session_id IS NOT NULL GROUP BY tenant, session_id"
            ),
        ),
    ] {
        let renamed: BTreeSet<(String, Option<String>, u64)> = (rows(&server, &auditor, &sql)
            .iter())
        .map(|r| {
            let tenant = text(&r["tenant"]).unwrap();
            let v = text(&r["v"]).map(|v| renaming[&(tenant.clone(), v)].clone());
            (tenant, v, r["n"].as_u64().unwrap())
        })
        .collect();
        let pseudonymous: BTreeSet<(String, Option<String>, u64)> = (rows(&server, &analyst, &sql)
            .iter())
        .map(|r| {
            (
                text(&r["tenant"]).unwrap(),
                text(&r["v"]),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
        if sql.contains("LIMIT") {
            // Ties at the cut may keep other addresses: compare the counts.
            let counts = |s: &BTreeSet<(String, Option<String>, u64)>| {
                let mut counts: Vec<u64> = s.iter().map(|r| r.2).collect();
                counts.sort();
                counts
            };
            assert_eq!(counts(&renamed), counts(&pseudonymous), "{column}");
        } else {
            assert_eq!(renamed, pseudonymous, "{column}");
        }
    }

    // A raw value finds nothing, and no answer, plan or error holds one.
    let (some_user, some_ip) = {
        let first = raw
            .values()
            .find(|v| v[0].is_some() && v[1].is_some())
            .unwrap();
        (first[0].clone().unwrap(), first[1].clone().unwrap())
    };
    for probe in [
        format!("SELECT count(*) AS n FROM events WHERE user = '{some_user}'"),
        format!(
            "SELECT count(*) AS n FROM events WHERE src_ip = '{some_ip}' OR message LIKE '%{some_user}%'"
        ),
        format!(
            "SELECT count(*) AS n FROM events WHERE user IN (SELECT user FROM events WHERE user = '{some_user}')"
        ),
    ] {
        assert!(
            rows(&server, &auditor, &probe)[0]["n"].as_u64().unwrap() > 0,
            "{probe}"
        );
        assert_eq!(rows(&server, &analyst, &probe)[0]["n"], 0, "{probe}");
    }
    let corpus = [
        "SELECT * FROM events",
        "SELECT * FROM access UNION ALL SELECT * FROM data_usage UNION ALL SELECT * FROM technical",
        "SELECT message, attrs, CAST(attrs AS VARCHAR) AS a FROM events WHERE attrs IS NOT NULL",
        "SELECT upper(user), lower(host), substr(src_ip, 1, 7), concat(user, '/', session_id), reverse(message) FROM events",
        "SELECT string_agg(user, ',') AS users, array_agg(DISTINCT src_ip) AS ips FROM events GROUP BY tenant",
        "SELECT min(user), max(user), min(src_ip), max(src_ip), min(host), max(session_id) FROM events",
        "SELECT user FROM events ORDER BY user LIMIT 3",
        "SELECT src_ip, count(*) FROM events GROUP BY src_ip ORDER BY count(*) DESC LIMIT 5",
        "SELECT a.user, b.host FROM events a JOIN events b ON a.session_id = b.session_id LIMIT 50",
        "SELECT attrs['reason'], attrs['country'], attrs['channel'] FROM events",
        "SELECT map_keys(attrs), map_values(attrs) FROM events",
        "SELECT * FROM information_schema.columns",
        "SELECT relname FROM pg_catalog.pg_class",
        "EXPLAIN SELECT user, count(*) FROM events WHERE ts > '2025-01-01' GROUP BY user",
        "EXPLAIN ANALYZE SELECT user, src_ip, count(*) FROM events GROUP BY user, src_ip",
        "EXPLAIN VERBOSE SELECT min(user), max(src_ip) FROM events",
        // Errors print the value they fail on: the pseudonym, never the raw one.
        "SELECT CAST(user AS INT) FROM events",
        "SELECT CAST(src_ip AS BIGINT) FROM events",
        "SELECT arrow_cast(session_id, 'Int64') FROM events",
        "SELECT to_timestamp(host) FROM events",
        "SELECT * FROM strata_files",
        "SELECT * FROM strata_audit",
        "SELECT * FROM events WHERE tenant = 'strata-system'",
    ];
    let mut answered = 0;
    for sql in corpus {
        let answer = ask(&server, &analyst, sql);
        let body = answer.text();
        answered += usize::from(answer.status == 200);
        for value in &raw_values {
            assert!(
                !occurs_as_word(&body, value),
                "{sql} shows `{value}`: {body:.2000}"
            );
        }
        assert!(!body.contains("strata-system"), "{sql}: {body:.2000}");
    }
    assert!(answered >= 15, "most of the corpus is answered: {answered}");
    // The analyst reads no record of the server's own tenant, and its
    // statements are recorded like anyone's.
    let system =
        "SELECT count(*) AS n FROM events WHERE tenant = 'strata-system' AND user = 'analyst'";
    assert!(rows(&server, &auditor, system)[0]["n"].as_u64().unwrap() >= corpus.len() as u64);

    // psql sees the same pseudonyms as HTTP.
    let by_user = format!(
        "SELECT tenant, user, count(*) AS n FROM events WHERE {DATA} GROUP BY tenant, user"
    );
    let over_http = http_rows(&server, &analyst, &by_user);
    assert_eq!(psql_rows(&server, "analyst", &analyst, &by_user), over_http);
    assert!(server.terminate().success());

    // Pseudonyms outlive a restart and the rotation of a tenant's data key.
    let tenant = raw.keys().next().unwrap().0.clone();
    run_ok(strata(&archive).args(["keys", "rotate", "--tenant", &tenant]));
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--pg", "127.0.0.1:0"]);
    assert_eq!(http_rows(&server, &analyst, &by_user), over_http);
    assert!(server.terminate().success());
}
