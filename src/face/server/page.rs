//! Keyset pagination of the server's lists (server): `?limit=N&after=CURSOR` on every route
//! that answers a list (`man server`, "Pagination"). A page is read with `LIMIT N + 1` from
//! the position a cursor names, on an index in the list's own order, so a request holds at
//! most one page whatever the data, and items added between two requests neither repeat nor
//! push others out of the walk (no `OFFSET`).
//!
//! A cursor is the key of the last item of a page (its text and id), the list it belongs to
//! and its scope (the account, project or script listed), signed with a key derived from
//! the server's secret (BLAKE3 keyed hash) and written in URL-safe base64. The server reads
//! back only what it signed: a cursor that is malformed, cut, altered, made up, or taken
//! from another list is a validation failure (400), never a query.

use super::db::Row;
use super::{ApiError, Req};
use crate::protocol::{PAGE_AFTER, PAGE_LIMIT};
use base64::Engine;

/// Which list a cursor walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// An account's projects, newest first: key (created_at, id).
    Projects = 1,
    /// A project's scripts, newest first: key (created_at, id).
    Scripts = 2,
    /// A script's executions, newest first: key id.
    Executions = 3,
    /// A project's files by path: key path.
    Files = 4,
}

/// The position after which a page starts: the last item of the page before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The text part of the order (a time, a path), empty when the order has none.
    pub text: String,
    /// The id part of the order, 0 when the order has none.
    pub id: i64,
}

/// What a request asks of a list.
#[derive(Debug, PartialEq, Eq)]
pub struct Want {
    /// Items in the page.
    pub limit: usize,
    /// Where the page starts; None: at the first item.
    pub after: Option<Key>,
}

/// Page sizes: the one a request without `limit` gets, and the most it may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub default: usize,
    pub max: usize,
}

/// The longest cursor read, in characters (a file path of 1,024 bytes makes about 1,450).
const MAX_CURSOR: usize = 2048;
const HEAD: usize = 1 + 8 + 8;
const MAC: usize = 32;

/// Makes and reads the cursors of one server (or of every server sharing its secret).
pub struct Cursors {
    key: [u8; 32],
}

impl Cursors {
    /// Cursors signed with a key derived from the server's token secret.
    pub fn new(secret: &[u8]) -> Cursors {
        Cursors {
            key: blake3::derive_key("valyxo server 2026-11 list cursors", secret),
        }
    }

    /// The cursor of the page after `key` in `list` of `scope`.
    pub fn encode(&self, list: List, scope: i64, key: &Key) -> String {
        let mut data = Vec::with_capacity(HEAD + key.text.len() + MAC);
        data.push(list as u8);
        data.extend_from_slice(&scope.to_be_bytes());
        data.extend_from_slice(&key.id.to_be_bytes());
        data.extend_from_slice(key.text.as_bytes());
        let mac = blake3::keyed_hash(&self.key, &data);
        data.extend_from_slice(mac.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    }

    /// The key in `cursor`, if this server made it for `list` of `scope`.
    pub fn decode(&self, list: List, scope: i64, cursor: &str) -> Option<Key> {
        if cursor.len() > MAX_CURSOR {
            return None;
        }
        let data = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()?;
        if data.len() < HEAD + MAC {
            return None;
        }
        let (body, mac) = data.split_at(data.len() - MAC);
        let mac: [u8; MAC] = mac.try_into().ok()?;
        // Compared in constant time (blake3::Hash's equality).
        if blake3::keyed_hash(&self.key, body) != mac {
            return None;
        }
        let number = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        if body[0] != list as u8 || number(1)? != scope {
            return None;
        }
        Some(Key {
            id: number(9)?,
            text: String::from_utf8(body[HEAD..].to_vec()).ok()?,
        })
    }

    /// The page a request asks for (its `limit` and `after`), checked: a bad one is a
    /// validation failure naming the parameter.
    pub fn want(&self, req: &Req, list: List, scope: i64, sizes: Sizes) -> Result<Want, ApiError> {
        let mut limit: Option<String> = None;
        let mut after: Option<String> = None;
        for (name, value) in form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes()) {
            let slot = if name == PAGE_LIMIT {
                &mut limit
            } else if name == PAGE_AFTER {
                &mut after
            } else {
                continue;
            };
            if slot.is_some() {
                return Err(ApiError::invalid(vec![(
                    if name == PAGE_LIMIT {
                        PAGE_LIMIT
                    } else {
                        PAGE_AFTER
                    },
                    format!("{name} is given more than once"),
                )]));
            }
            *slot = Some(value.into_owned());
        }
        let mut details = Vec::new();
        let max = sizes.max.max(1);
        let limit = match limit {
            None => sizes.default.clamp(1, max),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) && !text.starts_with('+') => n,
                _ => {
                    details.push((
                        PAGE_LIMIT,
                        format!("{PAGE_LIMIT} must be a whole number from 1 to {max}"),
                    ));
                    0
                }
            },
        };
        let after = match after.filter(|a| !a.is_empty()) {
            None => None,
            Some(text) => {
                let key = self.decode(list, scope, &text);
                if key.is_none() {
                    details.push((
                        PAGE_AFTER,
                        format!(
                            "{PAGE_AFTER} must be the 'next' cursor of a page of this same \
                             list: start again without it"
                        ),
                    ));
                }
                key
            }
        };
        if details.is_empty() {
            Ok(Want { limit, after })
        } else {
            Err(ApiError::invalid(details))
        }
    }
}

/// Cuts the `limit + 1` rows read for a page down to the page, and says whether more
/// follow (the extra row is only that sign).
pub fn cut(rows: &mut Vec<Row>, limit: usize) -> bool {
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
}

/// The `next` cursor of a page: the key of its last row when more follow, else None.
pub fn next(
    cursors: &Cursors,
    list: List,
    scope: i64,
    rows: &[Row],
    more: bool,
    key: impl Fn(&Row) -> Key,
) -> Option<String> {
    let last = rows.last().filter(|_| more)?;
    Some(cursors.encode(list, scope, &key(last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn key(text: &str, id: i64) -> Key {
        Key {
            text: text.into(),
            id,
        }
    }

    fn req(query: &str) -> Req {
        Req {
            param: None,
            query: Some(query.to_string()),
            body: Default::default(),
            user: None,
        }
    }

    const SIZES: Sizes = Sizes {
        default: 100,
        max: 1000,
    };

    #[test]
    fn cursors_read_back_what_they_were_made_from() {
        let c = Cursors::new(b"a secret of thirty-two bytes or more");
        for (list, scope, k) in [
            (List::Projects, 7, key("2026-11-26T19:39:32.123Z", 42)),
            (List::Scripts, 1, key("", 0)),
            (List::Executions, i64::MAX, key("", i64::MIN)),
            (List::Files, 3, key("src/ü ☕/main.rs", 0)),
            (List::Files, 3, key(&"x/".repeat(511), 0)),
        ] {
            let text = c.encode(list, scope, &k);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(c.decode(list, scope, &text), Some(k));
        }
    }

    #[test]
    fn hostile_cursors_are_refused() {
        let c = Cursors::new(b"a secret of thirty-two bytes or more");
        let good = c.encode(List::Projects, 7, &key("2026-11-26T19:39:32.123Z", 42));
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut flipped = engine.decode(&good).unwrap();
        flipped[10] ^= 1;
        let mut forged = engine.decode(&good).unwrap();
        let n = forged.len();
        forged[n - 1] ^= 0x80;
        let mut bad = vec![
            String::new(),
            "!!!!".into(),
            "a".into(),
            "AAAA".into(),
            format!("{good}="),
            format!("{good}A"),
            good[..good.len() - 1].to_string(),
            good[1..].to_string(),
            good.replace('-', "+").replace('_', "/") + "/+",
            engine.encode(flipped),
            engine.encode(forged),
            engine.encode([0u8; 49]),
            engine.encode(vec![1u8; 4096]),
            "A".repeat(10_000),
            "%00".into(),
            "' OR 1=1 --".into(),
            // The same position, signed by another server.
            Cursors::new(b"another secret of thirty-two bytes!").encode(
                List::Projects,
                7,
                &key("2026-11-26T19:39:32.123Z", 42),
            ),
            // Another account's, and another list's.
            c.encode(List::Projects, 8, &key("2026-11-26T19:39:32.123Z", 42)),
            c.encode(List::Scripts, 7, &key("2026-11-26T19:39:32.123Z", 42)),
        ];
        // A made-up key with a valid-looking shape but no signature.
        let mut plain = vec![1u8];
        plain.extend_from_slice(&7i64.to_be_bytes());
        plain.extend_from_slice(&1i64.to_be_bytes());
        plain.extend_from_slice(&[0u8; 40]);
        bad.push(engine.encode(plain));
        for b in &bad {
            assert_eq!(c.decode(List::Projects, 7, b), None, "{b:?}");
            let e = c
                .want(&req(&format!("after={b}")), List::Projects, 7, SIZES)
                .map(|_| ())
                .err();
            if b.is_empty() {
                // An empty `after` is the first page.
                assert!(e.is_none());
                continue;
            }
            let e = e.unwrap_or_else(|| panic!("{b:?} was accepted"));
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.message, "Validation failed");
        }
        assert!(c.decode(List::Projects, 7, &good).is_some());
    }

    #[test]
    fn limits_are_whole_numbers_within_the_maximum() {
        let c = Cursors::new(b"a secret of thirty-two bytes or more");
        let want = |q: &str| c.want(&req(q), List::Files, 1, SIZES);
        assert_eq!(
            want("").unwrap(),
            Want {
                limit: 100,
                after: None
            }
        );
        assert_eq!(want("limit=1").unwrap().limit, 1);
        assert_eq!(want("limit=1000&other=x").unwrap().limit, 1000);
        assert_eq!(want("after=&limit=5").unwrap().limit, 5);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=+5",
            "limit=1.5",
            "limit=",
            "limit=ten",
            "limit=99999999999999999999999",
            "limit=5&limit=6",
            "after=x&after=y",
        ] {
            let e = want(bad).map(|_| ()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        // A cursor survives percent-encoding, as a client may send it.
        let cur = c.encode(List::Files, 1, &key("a b/c", 0));
        let q = format!("after={}", cur.replace('-', "%2D"));
        assert_eq!(want(&q).unwrap().after, Some(key("a b/c", 0)));
        // Without a query string at all: the default page.
        let mut r = req("");
        r.query = None;
        assert_eq!(c.want(&r, List::Files, 1, SIZES).unwrap().limit, 100);
    }

    /// On SQLite, each page is one range of an index in the list's order: no table scan and
    /// no sort, however long the list.
    #[test]
    fn every_page_reads_one_index_range() {
        use super::super::db::{Db, Val};
        use super::super::{files::FILES_PAGE, projects};
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite:{}", dir.path().join("s.db").display()), 1).unwrap();
        let t = || Val::from("2026-11-26T19:39:32.123Z");
        for (sql, index, params) in [
            (
                projects::PROJECTS_PAGE[0],
                "projects_page",
                vec![1.into(), 5.into()],
            ),
            (
                projects::PROJECTS_PAGE[1],
                "projects_page",
                vec![1.into(), t(), 9.into(), 5.into()],
            ),
            (
                projects::SCRIPTS_PAGE[0],
                "scripts_page",
                vec![1.into(), 5.into()],
            ),
            (
                projects::SCRIPTS_PAGE[1],
                "scripts_page",
                vec![1.into(), t(), 9.into(), 5.into()],
            ),
            (
                projects::EXECUTIONS_PAGE[0],
                "executions_page",
                vec![1.into(), 5.into()],
            ),
            (
                projects::EXECUTIONS_PAGE[1],
                "executions_page",
                vec![1.into(), 9.into(), 5.into()],
            ),
            (
                FILES_PAGE[0],
                "sqlite_autoindex_files_1",
                vec![1.into(), 5.into()],
            ),
            (
                FILES_PAGE[1],
                "sqlite_autoindex_files_1",
                vec![1.into(), "a/b".into(), 5.into()],
            ),
        ] {
            let plan: Vec<String> = db
                .read(|c| {
                    Ok(c.query(&format!("EXPLAIN QUERY PLAN {sql}"), &params)?
                        .iter()
                        .map(|r| r.text(3))
                        .collect())
                })
                .unwrap();
            let plan = plan.join(" | ");
            assert!(
                plan.contains(&format!("USING INDEX {index} (")) && !plan.contains("TEMP B-TREE"),
                "{sql}: {plan}"
            );
            // The keyset bound is part of the index range, not a filter after it.
            if params.len() > 2 {
                assert!(plan.contains('<') || plan.contains('>'), "{sql}: {plan}");
            }
        }
    }

    /// Projects created in the same millisecond are told apart by their id: a walk in small
    /// pages meets each exactly once, newest first.
    #[test]
    fn a_walk_through_equal_times_meets_every_item_once() {
        use super::super::db::testing::{add_user, sqlite};
        use super::super::projects::PROJECTS_PAGE;
        let (_dir, db) = sqlite(1);
        db.write(|c| {
            add_user(c, "a")?;
            for i in 0..14 {
                let t = if i < 11 {
                    "2026-01-01T00:00:00.000Z"
                } else {
                    "2026-01-02T00:00:00.000Z"
                };
                c.exec(
                    "INSERT INTO projects (user_id, name, description, created_at, updated_at) \
                     VALUES (1, ?, '', ?, ?)",
                    &[format!("p{i}").into(), t.into(), t.into()],
                )?;
            }
            Ok(())
        })
        .unwrap();
        let cursors = Cursors::new(b"a secret of thirty-two bytes or more");
        let (mut seen, mut after): (Vec<i64>, Option<Key>) = (Vec::new(), None);
        for _ in 0..20 {
            let mut rows = db
                .read(|c| {
                    Ok(match &after {
                        None => c.query(PROJECTS_PAGE[0], &[1.into(), 4.into()])?,
                        Some(k) => c.query(
                            PROJECTS_PAGE[1],
                            &[1.into(), (&k.text).into(), k.id.into(), 4.into()],
                        )?,
                    })
                })
                .unwrap();
            let more = cut(&mut rows, 3);
            seen.extend(rows.iter().map(|r| r.int(0)));
            let Some(n) = next(&cursors, List::Projects, 1, &rows, more, |r| Key {
                text: r.text(3),
                id: r.int(0),
            }) else {
                break;
            };
            after = cursors.decode(List::Projects, 1, &n);
        }
        let want: Vec<i64> = (12..=14).rev().chain((1..=11).rev()).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_page_is_cut_at_its_limit_and_names_its_last_row() {
        let c = Cursors::new(b"a secret of thirty-two bytes or more");
        let row = |i: i64| Row(vec![super::super::db::Val::Int(i)]);
        let k = |r: &Row| key("", r.int(0));
        let mut rows: Vec<Row> = (1..=4).map(row).collect();
        let more = cut(&mut rows, 3);
        assert!(more);
        assert_eq!(rows.len(), 3);
        let n = next(&c, List::Executions, 5, &rows, more, k).unwrap();
        assert_eq!(c.decode(List::Executions, 5, &n), Some(key("", 3)));
        let mut rows: Vec<Row> = (1..=3).map(row).collect();
        let more = cut(&mut rows, 3);
        assert!(!more);
        assert_eq!(next(&c, List::Executions, 5, &rows, more, k), None);
        let mut none: Vec<Row> = Vec::new();
        assert!(!cut(&mut none, 3));
        assert_eq!(next(&c, List::Executions, 5, &none, true, k), None);
    }
}
