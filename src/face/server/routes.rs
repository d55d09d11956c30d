//! Every route of the server as data (server): method, path, the work, authentication, the
//! body it reads, and how it is documented. The router and the OpenAPI document
//! (`openapi.rs`) are both made from this one table, so they cannot differ.

use super::{archive, auth, blobs, files, projects, AsyncHandler, Handler, StreamHandler};
use crate::protocol::types::*;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// How a route's work is done.
#[derive(Clone, Copy)]
pub enum Work {
    Blocking(Handler),
    Async(AsyncHandler),
    /// Reads its body as it arrives (with `Body::Blob`).
    Stream(StreamHandler),
}

#[derive(Clone, Copy, PartialEq)]
pub enum Auth {
    Public,
    Required,
    /// Public and rate limited per client address; hashes a password (login, register).
    Limited,
    /// Authenticated and rate limited per client address; hashes a password (a password
    /// change).
    RequiredLimited,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Body {
    None,
    Json,
    /// File content (`application/octet-stream`).
    Blob,
}

/// A JSON Schema of some wire type, made by a generator that collects the definitions.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What the OpenAPI document says of a route.
pub struct Doc {
    pub summary: &'static str,
    /// The JSON body's type, for routes that read one.
    pub request: Option<SchemaFn>,
    /// The status of success and the answer's type (None: the answer is file content).
    pub answer: (u16, Option<SchemaFn>),
    /// Failures particular to the route; those that follow from its authentication, body
    /// and path are added to them.
    pub errors: &'static [u16],
    /// Its query parameters (a paginated list's are added to them).
    pub query: &'static [Query],
}

/// A query parameter of a route.
pub struct Query {
    pub name: &'static str,
    pub required: bool,
    /// A whole number (else text).
    pub integer: bool,
    pub description: &'static str,
}

/// The `path` of one file's content.
const FILE_PATH: Query = Query {
    name: "path",
    required: true,
    integer: false,
    description: "The file's path in the project, UTF-8 text: names separated by '/', \
                  without '.', '..' or empty names (as a commit's paths)",
};

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub work: Work,
    pub auth: Auth,
    pub body: Body,
    pub doc: Doc,
}

use Auth::{Limited, Public, Required, RequiredLimited};
use Work::{Async, Blocking, Stream};

/// Every route.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/auth/register",
        work: Blocking(auth::register),
        auth: Limited,
        body: Body::Json,
        doc: Doc {
            summary: "Create an account and get a token",
            request: Some(schema::<RegisterRequest>),
            answer: (201, Some(schema::<Answer<Session>>)),
            errors: &[409],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/auth/login",
        work: Blocking(auth::login),
        auth: Limited,
        body: Body::Json,
        doc: Doc {
            summary: "Log in with a user name or email and get a token",
            request: Some(schema::<LoginRequest>),
            answer: (200, Some(schema::<Answer<Session>>)),
            errors: &[401],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/auth/logout",
        work: Blocking(auth::logout),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Revoke this token",
            request: None,
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/auth/logout-all",
        work: Blocking(auth::logout_all),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Revoke every token of the account, on every machine and browser",
            request: None,
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/web/register",
        work: Blocking(auth::web_register),
        auth: Limited,
        body: Body::Json,
        doc: Doc {
            summary: "Create an account from a web page: the session goes to an HttpOnly cookie",
            request: Some(schema::<RegisterRequest>),
            answer: (201, Some(schema::<Answer<WebSession>>)),
            errors: &[403, 409],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/web/login",
        work: Blocking(auth::web_login),
        auth: Limited,
        body: Body::Json,
        doc: Doc {
            summary: "Log in from a web page: the session goes to an HttpOnly cookie",
            request: Some(schema::<LoginRequest>),
            answer: (200, Some(schema::<Answer<WebSession>>)),
            errors: &[401, 403],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/auth/me",
        work: Blocking(auth::me),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "The signed-in account",
            request: None,
            answer: (200, Some(schema::<Answer<MeAnswer>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/users/profile",
        work: Blocking(auth::profile),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "The profile, with project and script counts",
            request: None,
            answer: (200, Some(schema::<Answer<ProfileAnswer>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/users/profile",
        work: Blocking(auth::update_profile),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Change the user name or email",
            request: Some(schema::<ProfileUpdate>),
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[409],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/users/password",
        work: Blocking(auth::change_password),
        auth: RequiredLimited,
        body: Body::Json,
        doc: Doc {
            summary: "Change the password; every other session is signed out",
            request: Some(schema::<PasswordChange>),
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/users/stats",
        work: Blocking(auth::stats),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Counts of projects, scripts and executions, and the total execution time",
            request: None,
            answer: (200, Some(schema::<Answer<StatsAnswer>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/users/theme",
        work: Blocking(auth::theme),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "The theme of the account's web pages, and the themes there are",
            request: None,
            answer: (200, Some(schema::<Answer<Data<ThemeChoice>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/users/theme",
        work: Blocking(auth::set_theme),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Keep one of the built-in themes with the account, for its web pages",
            request: Some(schema::<ThemeRequest>),
            answer: (200, Some(schema::<Answer<Data<ThemeChoice>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/highlight",
        work: Blocking(super::web::highlight),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Text highlighted as the file its path names, in the account's theme, for \
                      the web editor: a whole text starts a session, an edit of it answers the \
                      lines it re-coloured (409 with code highlight_session_lost: the session is \
                      not known here or moved on, send the whole text; 413 over 512 KiB; 429 \
                      while the account's last two are under way)",
            request: Some(schema::<HighlightRequest>),
            answer: (200, Some(schema::<Answer<Data<Highlighted>>>)),
            errors: &[409, 413, 429],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/assistant",
        work: Async(super::assistant::status),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Whether the server has an assistant for the web editor, its model, and \
                      how its operator turns it on when it is off",
            request: None,
            answer: (200, Some(schema::<Answer<Data<AssistantStatus>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/assistant",
        work: Async(super::assistant::ask),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Ask the assistant about a text (or the part selected): the answer \
                      streams back as NDJSON. 503 when the server has no assistant; 429 while \
                      the account's last answer is under way or past its questions per minute; \
                      502 or 504 when the assistant's API fails before the answer begins",
            request: Some(schema::<AssistantRequest>),
            answer: (200, None),
            errors: &[429, 502, 504],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/limits",
        work: Blocking(super::limits),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "What the server accepts: sizes, the account's quota and use, script limits",
            request: None,
            answer: (200, Some(schema::<Answer<Data<Limits>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/projects",
        work: Blocking(projects::list),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "A page of the account's projects, newest first",
            request: None,
            answer: (200, Some(schema::<Answer<Page<Vec<Project>>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/projects",
        work: Blocking(projects::create),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Create a project",
            request: Some(schema::<ProjectRequest>),
            answer: (201, Some(schema::<Answer<Done<Project>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/projects/{id}",
        work: Blocking(projects::show),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "One project",
            request: None,
            answer: (200, Some(schema::<Answer<Data<Project>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/projects/{id}",
        work: Blocking(projects::update),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Rename or describe a project",
            request: Some(schema::<ProjectRequest>),
            answer: (200, Some(schema::<Answer<Done<ProjectUpdated>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "DELETE",
        path: "/api/projects/{id}",
        work: Blocking(projects::delete),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Delete a project with its scripts and files",
            request: None,
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/projects/{id}/delete",
        work: Blocking(projects::delete_unchanged),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Delete a project if its files did not change since a revision (409 \
                      otherwise): how sync deletes a project deleted on one machine",
            request: Some(schema::<ProjectDeleteRequest>),
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[409],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/scripts/project/{id}",
        work: Blocking(projects::scripts),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "A page of a project's scripts (without their content), newest first",
            request: None,
            answer: (200, Some(schema::<Answer<Page<Vec<ScriptSummary>>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/scripts/project/{id}",
        work: Blocking(projects::create_script),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Create a script in a project",
            request: Some(schema::<ScriptRequest>),
            answer: (201, Some(schema::<Answer<Done<ScriptCreated>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/scripts/{id}",
        work: Blocking(projects::script),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "One script with its content",
            request: None,
            answer: (200, Some(schema::<Answer<Data<Script>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/scripts/{id}",
        work: Blocking(projects::update_script),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Change a script (409 when base_updated_at is given and the script \
                      was saved since)",
            request: Some(schema::<ScriptRequest>),
            answer: (200, Some(schema::<Answer<Done<ScriptUpdated>>>)),
            errors: &[409],
            query: &[],
        },
    },
    Route {
        method: "DELETE",
        path: "/api/scripts/{id}",
        work: Blocking(projects::delete_script),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Delete a script with its executions",
            request: None,
            answer: (200, Some(schema::<Answer<Message>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/scripts/{id}/execute",
        work: Async(projects::execute),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Run a script in the sandbox (429 when the account or the server has its \
                      most executions under way)",
            request: None,
            answer: (200, Some(schema::<Answer<Data<Execution>>>)),
            errors: &[429],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/scripts/{id}/executions",
        work: Blocking(projects::executions),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "A page of a script's latest executions, newest first",
            request: None,
            answer: (200, Some(schema::<Answer<Page<Vec<ExecutionSummary>>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/projects/{id}/files",
        work: Blocking(files::list),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "A page of a project's files by path (deleted ones as tombstones) and its \
                      revision (the first page is the largest page unless `limit` says less)",
            request: None,
            answer: (200, Some(schema::<Answer<Page<Files>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "POST",
        path: "/api/projects/{id}/files/commit",
        work: Blocking(files::commit),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Apply changes to a project's files, all or none (409 lists the files \
                      changed meanwhile); answers the files it changed",
            request: Some(schema::<CommitRequest>),
            answer: (200, Some(schema::<Answer<Data<Files>>>)),
            errors: &[409],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/projects/{id}/files/content",
        work: Async(files::read_content),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "One file's content, by its path (404: no such file, or deleted)",
            request: None,
            answer: (200, None),
            errors: &[400, 429],
            query: &[FILE_PATH],
        },
    },
    Route {
        method: "GET",
        path: "/api/projects/{id}/files/archive",
        work: Async(archive::get),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "A folder's files (or the whole project's) as one .zip, written as it is \
                      sent; names are relative to the folder's parent (404: no files there; \
                      413: more than 100,000 files)",
            request: None,
            answer: (200, None),
            errors: &[400, 413, 429],
            query: &[Query {
                name: "path",
                required: false,
                integer: false,
                description: "The folder, as a relative path (absent or empty: the whole \
                              project)",
            }],
        },
    },
    Route {
        method: "PUT",
        path: "/api/projects/{id}/files/content",
        work: Stream(files::write_content),
        auth: Required,
        body: Body::Blob,
        doc: Doc {
            summary: "Store the body as a file's new content and commit it, if the file is \
                      still at base_version (409 with the server's version otherwise, and \
                      nothing changes); for clients that do not hash content themselves",
            request: None,
            answer: (200, Some(schema::<Answer<Data<Files>>>)),
            errors: &[409, 429, 507],
            query: &[
                FILE_PATH,
                Query {
                    name: "base_version",
                    required: true,
                    integer: true,
                    description: "The version of the file the new content is based on, as \
                                  the listing gives it (0: the file does not exist yet)",
                },
            ],
        },
    },
    Route {
        method: "POST",
        path: "/api/blobs/missing",
        work: Blocking(files::missing),
        auth: Required,
        body: Body::Json,
        doc: Doc {
            summary: "Which of these contents the server lacks",
            request: Some(schema::<MissingRequest>),
            answer: (200, Some(schema::<Answer<Data<Missing>>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "PUT",
        path: "/api/blobs/{hash}",
        work: Stream(blobs::put),
        auth: Required,
        body: Body::Blob,
        doc: Doc {
            summary: "Upload file content under its BLAKE3 hash, streamed; nothing is kept \
                      unless all of it arrives and matches the hash (400: it does not; 413: \
                      larger than the server's --max-file-size; 429: the account's uploads \
                      are all under way; 507: the storage quota is full)",
            request: None,
            answer: (201, Some(schema::<Answer<Done<BlobStored>>>)),
            errors: &[429, 507],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/blobs/{hash}",
        work: Async(blobs::get),
        auth: Required,
        body: Body::None,
        doc: Doc {
            summary: "Download file content",
            request: None,
            answer: (200, None),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/health",
        work: Async(super::health),
        auth: Public,
        body: Body::None,
        doc: Doc {
            summary: "Whether the server answers",
            request: None,
            answer: (200, Some(schema::<Answer<Health>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/ready",
        work: Blocking(super::ready),
        auth: Public,
        body: Body::None,
        doc: Doc {
            summary: "Whether the server can serve: its database answers (503 if not)",
            request: None,
            answer: (200, Some(schema::<Answer<Health>>)),
            errors: &[],
            query: &[],
        },
    },
    Route {
        method: "GET",
        path: "/api/openapi.json",
        work: Async(super::openapi),
        auth: Public,
        body: Body::None,
        doc: Doc {
            summary: "This document",
            request: None,
            answer: (200, None),
            errors: &[],
            query: &[],
        },
    },
];

/// The GET routes that answer a list one page at a time, with the query parameters `limit`
/// and `after` (`page.rs`) and `next` beside `data` in the answer.
pub const PAGED: &[&str] = &[
    "/api/projects",
    "/api/scripts/project/{id}",
    "/api/scripts/{id}/executions",
    "/api/projects/{id}/files",
];

/// Whether `r` answers a list one page at a time.
pub fn paged(r: &Route) -> bool {
    r.method == "GET" && PAGED.contains(&r.path)
}

/// The failures every route of this kind can answer with, beside its own.
pub fn errors(r: &Route) -> Vec<u16> {
    let mut e: Vec<u16> = r.doc.errors.to_vec();
    let mut add = |s: u16| {
        if !e.contains(&s) {
            e.push(s);
        }
    };
    if matches!(r.auth, Required | RequiredLimited) {
        add(401);
        if r.method != "GET" {
            // A browser session without its CSRF token.
            add(403);
        }
    }
    if matches!(r.auth, Limited | RequiredLimited) {
        add(429);
    }
    if paged(r) {
        // A bad `limit` or `after`.
        add(400);
    }
    if r.body != Body::None {
        // Malformed or invalid, too slow, too large.
        add(400);
        add(408);
        add(413);
    }
    if r.body == Body::Json && matches!(r.auth, Required | RequiredLimited) {
        // A large body while the account (or the server) has its most under way.
        add(429);
    }
    if r.path.contains('{') {
        add(404);
    }
    if r.path.contains("{hash}") {
        add(400);
    }
    if !matches!(r.work, Async(_)) || r.auth != Public {
        // The database is busy or failed.
        add(500);
        add(503);
        if r.method != "GET" {
            // A write the database's disk has no room for.
            add(507);
        }
    }
    e.sort_unstable();
    e
}
