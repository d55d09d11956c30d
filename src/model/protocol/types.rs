//! The wire types of the account and sync API (model layer): every request body the server
//! reads and every answer it sends, as serde types that the server writes and the sync
//! client reads. Their JSON Schemas (schemars) make the OpenAPI document, so the document
//! says exactly what goes over the wire: field names, types, which fields are required, and
//! the patterns of hashes, paths and names.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The regular expression of one name in a path (as `super::name_problem` checks it, but
/// for the length in bytes): no `/`, `\`, control or bidirectional characters, not `.` or
/// `..`.
pub const PATH_PATTERN: &str = r"^(?!\.\.?(?:/|$))[^/\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+(?:/(?!\.\.?(?:/|$))[^/\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+)*$";
/// The regular expression of a content hash: BLAKE3, 64 lower-case hex digits.
pub const HASH_PATTERN: &str = "^[0-9a-f]{64}$";
/// The regular expression of a project name as sent (the server trims spaces around it).
pub const PROJECT_NAME_PATTERN: &str =
    r"^[^/\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$";
/// The regular expression of a user name.
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

// ---- ids, versions and content hashes ----
//
// Each is its number or text on the wire (`serde(transparent)`) and in the OpenAPI document
// (its JSON Schema is its inner type's: [`same_schema_as`]), and a type of its own in the
// code, so one cannot be passed for another.

/// The JSON Schema of `$t` is that of `$inner`, so that the document is as it was before the
/// newtype (a derived one would name the type and carry its doc comment).
macro_rules! same_schema_as {
    ($($t:ty => $inner:ty),*) => {$(
        impl JsonSchema for $t {
            fn inline_schema() -> bool {
                <$inner as JsonSchema>::inline_schema()
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$inner as JsonSchema>::schema_name()
            }
            fn schema_id() -> std::borrow::Cow<'static, str> {
                <$inner as JsonSchema>::schema_id()
            }
            fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <$inner as JsonSchema>::json_schema(g)
            }
        }
    )*};
}

/// A project's id on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

/// The version of one file of a project: 0 before it exists, raised by every commit that
/// changes it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct FileVersion(pub i64);

/// A project's revision: raised by one with every commit.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Revision(pub i64);

macro_rules! shown_as_number {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
shown_as_number!(ProjectId, FileVersion, Revision);
same_schema_as!(ProjectId => i64, FileVersion => i64, Revision => i64, ContentHash => String);

/// The BLAKE3 hash of some content as the protocol writes it: 64 lower-case hex digits
/// ([`super::valid_hash`]). Only a valid one can be made, read from JSON included, so one
/// is always safe to put in a URL or a file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    /// The hash of `data`.
    pub fn of(data: &[u8]) -> ContentHash {
        ContentHash::from(blake3::hash(data))
    }

    /// `text` as a hash, if it is one.
    pub fn parse(text: &str) -> Option<ContentHash> {
        super::valid_hash(text).then(|| ContentHash(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(h: blake3::Hash) -> ContentHash {
        ContentHash(h.to_hex().to_string())
    }
}

impl From<ContentHash> for String {
    fn from(h: ContentHash) -> String {
        h.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContentHash, D::Error> {
        let text = String::deserialize(d)?;
        ContentHash::parse(&text).ok_or_else(|| {
            serde::de::Error::custom("a content hash is 64 lower-case hex digits (BLAKE3)")
        })
    }
}

/// A successful answer: `success: true` beside the answer's own fields.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Ok_{T}")]
pub struct Answer<T> {
    /// Always true.
    pub success: bool,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Answer<T> {
    pub fn new(body: T) -> Answer<T> {
        Answer {
            success: true,
            body,
        }
    }
}

/// An answer with a message and nothing else.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub message: String,
}

/// An answer whose payload is `data`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Data_{T}")]
pub struct Data<T> {
    pub data: T,
}

/// One page of a list: the items in `data` (as an unpaginated answer had them) and the
/// cursor of the next page in `next`, null on the last. The next page is asked for with
/// `?after=NEXT` (and the same `limit`); a cursor is opaque and only good for the list that
/// gave it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Page_{T}")]
pub struct Page<T> {
    pub data: T,
    /// The cursor of the next page; null on the last page. (Read as null from a server
    /// that does not paginate.)
    #[serde(default)]
    pub next: Option<String>,
}

/// An answer with a message and a payload.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Done_{T}")]
pub struct Done<T> {
    pub message: String,
    pub data: T,
}

/// A failure: `success: false` and a message; validation failures add `details`, a commit
/// conflict adds `conflicts`, a body over a limit adds `limit`, a full storage `quota`, and
/// a failure a client acts on by itself names it in `code`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    /// Always false.
    pub success: bool,
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<FileConflict>,
    /// The size limit, in bytes, a body went over (413).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The account's storage quota, in bytes (507).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// What failed, for a client to act on: `highlight_session_lost` (409 of
    /// `/api/highlight`: send the whole text again), `disk_full` (507: the server's disk
    /// had no room for a write, so nothing was changed; try again later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One problem with one field of a request.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A file that changed on the server since the version a commit was based on.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileConflict {
    pub path: String,
    pub server_version: FileVersion,
    /// None when the file is deleted on the server.
    pub server_hash: Option<ContentHash>,
}

// ---- accounts ----

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegisterRequest {
    #[schemars(length(min = 3, max = 32), regex(pattern = USERNAME_PATTERN))]
    pub username: String,
    #[schemars(email, length(max = 254))]
    pub email: String,
    /// 8 to 1024 characters with a lower-case letter, an upper-case letter and a digit.
    #[schemars(length(min = 8, max = 1024))]
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LoginRequest {
    /// The user name or the email address (either, in any case).
    #[schemars(length(min = 1))]
    pub username: String,
    #[schemars(length(min = 1))]
    pub password: String,
}

/// The account of a login or registration.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AccountUser {
    pub id: i64,
    pub username: String,
    pub email: String,
}

/// A login or registration: the account and its token (a bearer JWT).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    pub message: String,
    pub user: AccountUser,
    pub token: String,
}

/// A session begun by a web page: the token went to the browser's `HttpOnly` cookie,
/// never to the page.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct WebSession {
    pub message: String,
    pub user: AccountUser,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MeAnswer {
    pub user: Me,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: i64,
    pub username: String,
    pub email: String,
    #[serde(rename = "created_at")]
    pub created_at: String,
    #[serde(rename = "updated_at")]
    pub updated_at: String,
    pub project_count: i64,
    pub script_count: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProfileAnswer {
    pub user: Profile,
}

/// Either field, or both.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProfileUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 32), regex(pattern = USERNAME_PATTERN))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email, length(max = 254))]
    pub email: Option<String>,
}

/// The account's theme for the web pages ("" until one is chosen), and the themes there
/// are.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ThemeChoice {
    pub theme: String,
    pub themes: Vec<String>,
}

/// Text to highlight as the file `path` (its name picks the language): either the whole
/// `text`, which starts a session, or an edit of a session's text at its `revision`: lines
/// `from..from + removed` (0-based, lines split at `\n`) replaced by `lines`. An edit to a
/// session the server does not know (any more) or at another revision is refused with 409
/// and the code `highlight_session_lost`: send the whole text again.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HighlightRequest {
    #[schemars(length(max = 1024))]
    pub path: String,
    /// The whole text (at most 512 KiB); without it, an edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The session to edit, as a highlight of its text answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The session's revision the edit is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The first line the edit replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// How many lines it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// The new lines, without line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<String>>,
}

/// Highlighted text: its language, its session and revision (to send edits to), and the
/// coloured parts of lines `from..from + lines.length` of the text (every line for a whole
/// text; for an edit, its new lines and those below whose colours it changed; the others
/// keep theirs). Each part is `[start, end, colour, style]` with start and end in UTF-16
/// code units of the line (as JavaScript counts), the colour `#rrggbb`, and the style `b`
/// (bold), `i` (italic), `bi` or ``.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Highlighted {
    pub language: String,
    pub session: String,
    pub revision: u64,
    pub from: u64,
    pub lines: Vec<Vec<(u32, u32, String, String)>>,
}

/// A question for the web editor's assistant, about the open file or a part of it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AssistantRequest {
    /// What the user asks (not empty).
    #[schemars(length(min = 1))]
    pub question: String,
    /// The open file's path, named to the model.
    #[schemars(length(max = 1024))]
    pub path: Option<String>,
    /// The open file's text.
    pub text: Option<String>,
    /// The selected part of the text: when given, it is sent instead of the whole text.
    pub selection: Option<String>,
}

/// Whether the server has an assistant for the web editor, and how to turn one on when not.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AssistantStatus {
    pub configured: bool,
    /// The model asked, when configured.
    pub model: Option<String>,
    /// The most bytes of question, text and selection together one request may carry.
    pub max_input: u64,
    /// Questions one account may ask per minute (0: no limit).
    pub per_minute: u32,
    /// How the server's operator turns the assistant on, when it is off.
    pub help: Option<String>,
}

/// A theme to keep with the account: one of the built-in themes' names.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ThemeRequest {
    #[schemars(length(min = 1, max = 64))]
    pub theme: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    #[schemars(length(min = 1))]
    pub current_password: String,
    /// 8 to 1024 characters with a lower-case letter, an upper-case letter and a digit.
    #[schemars(length(min = 8, max = 1024))]
    pub new_password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub projects: i64,
    pub scripts: i64,
    /// Every execution ever, including those dropped from the scripts' histories.
    pub executions: i64,
    pub total_execution_time_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StatsAnswer {
    pub stats: Stats,
}

/// What the server accepts (`GET /api/limits`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// The largest file content, in bytes.
    pub blob_limit: u64,
    /// The largest JSON body, in bytes.
    pub json_limit: u64,
    /// The most hashes in one `blobs/missing` question, and changes in one commit.
    pub max_batch: u64,
    /// The largest page a list gives (its `limit` parameter); 0 from a server that does not
    /// paginate.
    #[serde(default)]
    pub max_page: u64,
    /// The account's storage quota in bytes; 0: none.
    pub quota: u64,
    /// The bytes of content the account stores now.
    pub storage_used: u64,
    pub script: ScriptLimits,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScriptLimits {
    pub time_ms: u64,
    /// Bytes one execution may hold.
    pub memory: u64,
    pub operations: u64,
    /// Bytes of output kept.
    pub output: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

// ---- projects and scripts ----

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProjectRequest {
    /// The folder name of the project on every machine that syncs it.
    #[schemars(length(min = 1, max = 100), regex(pattern = PROJECT_NAME_PATTERN))]
    pub name: String,
    /// Left out: empty on creation, unchanged on an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub description: Option<String>,
}

/// Deletes a project only if no commit changed its files since `revision` (what the client
/// last synced); otherwise 409, and nothing is deleted.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProjectDeleteRequest {
    #[schemars(range(min = 0))]
    pub revision: Revision,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A project as an update leaves it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProjectUpdated {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub updated_at: String,
}

/// The languages a script may be stored in; `rhai` and `valyxoscript` run on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rhai,
    Valyxoscript,
    Javascript,
    Python,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Language::Rhai,
        Language::Valyxoscript,
        Language::Javascript,
        Language::Python,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rhai => "rhai",
            Language::Valyxoscript => "valyxoscript",
            Language::Javascript => "javascript",
            Language::Python => "python",
        }
    }

    /// The language named `s` (in any case).
    pub fn parse(s: &str) -> Option<Language> {
        Language::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScriptRequest {
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    pub content: String,
    /// Left out: `rhai` on creation, unchanged on an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// On an update: the `updated_at` the new content is based on (every save makes it
    /// later). A script saved since is left as it is, with 409. Left out: no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_updated_at: Option<String>,
}

/// A script in a list (without its content).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScriptSummary {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub language: Language,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScriptCreated {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub language: Language,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Script {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub content: String,
    pub language: Language,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScriptUpdated {
    pub id: i64,
    pub name: String,
    pub language: Language,
    pub updated_at: String,
}

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    Error,
    /// Stopped by the time or operation limit (or because the client went away).
    Timeout,
    /// The language does not run on the server.
    Unsupported,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Error => "error",
            RunStatus::Timeout => "timeout",
            RunStatus::Unsupported => "unsupported",
        }
    }

    pub fn parse(s: &str) -> RunStatus {
        match s {
            "success" => RunStatus::Success,
            "timeout" => RunStatus::Timeout,
            "unsupported" => RunStatus::Unsupported,
            _ => RunStatus::Error,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Execution {
    pub id: i64,
    pub status: RunStatus,
    pub output: String,
    pub error: Option<String>,
    pub execution_time_ms: i64,
}

/// An execution in a script's history.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionSummary {
    pub id: i64,
    pub status: RunStatus,
    pub execution_time_ms: i64,
    pub executed_at: String,
}

// ---- sync ----

/// A file of a project on the server; a deleted file stays as a tombstone without a hash.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FileEntry {
    #[schemars(length(max = 1024), regex(pattern = PATH_PATTERN))]
    pub path: String,
    pub deleted: bool,
    #[schemars(regex(pattern = HASH_PATTERN))]
    pub hash: Option<ContentHash>,
    pub size: i64,
    pub version: FileVersion,
}

/// A project's files and its revision (raised by every commit).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Files {
    pub revision: Revision,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MissingRequest {
    #[schemars(length(max = 10000), inner(regex(pattern = HASH_PATTERN)))]
    pub hashes: Vec<ContentHash>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Missing {
    /// The hashes asked about that the server does not hold for the account.
    pub missing: Vec<ContentHash>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BlobStored {
    pub hash: ContentHash,
    pub size: u64,
}

/// One change of a commit: new content for a path, or (hash null) its deletion.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    #[schemars(length(min = 1, max = 1024), regex(pattern = PATH_PATTERN))]
    pub path: String,
    /// The content (uploaded first); null deletes the file.
    #[schemars(regex(pattern = HASH_PATTERN))]
    pub hash: Option<ContentHash>,
    /// The server version this change was based on: 0 for a new file.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub base_version: FileVersion,
    /// A rename: the path the content moves from. The same commit deletes that path (a
    /// change with a null hash), so a server that does not know renames still ends with the
    /// same files; `hash` must be what `from` holds, so the content is not uploaded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = PATH_PATTERN))]
    pub from: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommitRequest {
    /// The project revision the client last saw (informative; conflicts are per file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub base_revision: Option<Revision>,
    #[schemars(length(min = 1, max = 10000))]
    pub changes: Vec<Change>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_versions_and_hashes_are_plain_json() {
        let h = ContentHash::of(b"x");
        assert_eq!(h.as_str(), blake3::hash(b"x").to_hex().as_str());
        let entry = FileEntry {
            path: "a.txt".into(),
            deleted: false,
            hash: Some(h.clone()),
            size: 1,
            version: FileVersion(3),
        };
        let wire =
            json!({"path": "a.txt", "deleted": false, "hash": h.as_str(), "size": 1, "version": 3});
        assert_eq!(serde_json::to_value(&entry).unwrap(), wire);
        let back: FileEntry = serde_json::from_value(wire).unwrap();
        assert_eq!((back.hash, back.version), (Some(h), FileVersion(3)));
        let files: Files = serde_json::from_value(json!({"revision": 7, "files": []})).unwrap();
        assert_eq!(files.revision, Revision(7));
        let p: Project = serde_json::from_value(json!({
            "id": 12, "name": "p", "description": "", "created_at": "", "updated_at": ""
        }))
        .unwrap();
        assert_eq!((p.id, p.id.to_string()), (ProjectId(12), "12".to_string()));
    }

    #[test]
    fn a_change_names_its_old_path_only_when_it_is_a_rename() {
        let h = ContentHash::of(b"x");
        let plain = Change {
            path: "a".into(),
            hash: Some(h.clone()),
            base_version: FileVersion(0),
            from: None,
        };
        // What clients that predate renames send and read.
        let wire = json!({"path": "a", "hash": h.as_str(), "base_version": 0});
        assert_eq!(serde_json::to_value(&plain).unwrap(), wire);
        assert!(serde_json::from_value::<Change>(wire)
            .unwrap()
            .from
            .is_none());
        let moved: Change = serde_json::from_value(
            json!({"path": "b", "hash": h.as_str(), "base_version": 2, "from": "a"}),
        )
        .unwrap();
        assert_eq!(moved.from.as_deref(), Some("a"));
        let d: ProjectDeleteRequest = serde_json::from_value(json!({"revision": 5})).unwrap();
        assert_eq!(d.revision, Revision(5));
    }

    #[test]
    fn only_a_hash_reads_as_a_content_hash() {
        let good = blake3::hash(b"y").to_hex().to_string();
        assert!(ContentHash::parse(&good).is_some());
        for bad in [
            good.to_uppercase(),
            good[1..].to_string(),
            format!("{good}0"),
            "../../api/auth/me".to_string(),
            String::new(),
        ] {
            assert!(ContentHash::parse(&bad).is_none(), "{bad}");
            let e =
                serde_json::from_value::<BlobStored>(json!({"hash": bad, "size": 1})).unwrap_err();
            assert!(e.to_string().contains("64 lower-case hex digits"), "{e}");
        }
    }
}
