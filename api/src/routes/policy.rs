//! What each route asks of its callers, declared once in the route table: who may call it,
//! the permission it needs, the budget it spends, whether it answers in the envelope and how
//! it pages. The middleware enforces it before any handler runs; the document shows it to
//! integrators as each operation's `x-policy`.

use domain::access::{Action, Resource};
use serde::Serialize;
use utoipa::openapi::path::Operation;

/// Which of seed 001's request budgets a route spends, per caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// Signing in and everything else that tries a secret: 10 a minute by default.
    Auth,
    /// Job creation, which takes uploads: 5 a minute by default.
    Upload,
    /// The default: 100 a minute.
    General,
    /// Not counted: health probes, Stripe's signed webhooks, the web app's embedded files
    /// (a file from memory costs less than the limiter's Redis round trip).
    Unlimited,
}

/// Who may call a route: what its operation's documented `security` lists, so the document
/// and the enforcement cannot differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No credentials are read.
    Anyone,
    /// Anyone; a bearer token, when sent, must be valid, and the route shows its holder more.
    AnyoneOrSignedIn,
    /// A valid bearer token.
    SignedIn,
    /// A valid bearer token, or else the file pass cookie: the routes a browser navigates to
    /// (a job's download and poster). No other route reads that cookie.
    SignedInOrFilePass,
}

impl Access {
    /// The access an operation's `security` requirements document.
    fn documented(operation: &Operation) -> Self {
        let requirements: Vec<serde_json::Value> = operation
            .security
            .iter()
            .flatten()
            .map(|requirement| serde_json::to_value(requirement).expect("serialisable"))
            .collect();
        let names = |requirement: &serde_json::Value| -> Vec<String> {
            requirement
                .as_object()
                .map(|schemes| schemes.keys().cloned().collect())
                .unwrap_or_default()
        };
        let schemes: Vec<Vec<String>> = requirements.iter().map(names).collect();
        let has = |scheme: &str| schemes.iter().any(|names| names == &[scheme]);
        let optional = schemes.iter().any(Vec::is_empty);
        match (has("bearer"), has("file_pass"), optional) {
            (false, false, _) => Access::Anyone,
            (true, false, true) => Access::AnyoneOrSignedIn,
            (true, false, false) => Access::SignedIn,
            (true, true, false) => Access::SignedInOrFilePass,
            _ => panic!("unsupported security requirements {schemes:?}"),
        }
    }
}

/// How a listing route pages, as its documented query parameters say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Paging {
    /// `limit` (1 to 100, default 20) and `offset`.
    Offset,
    /// `page` (from 1) and `per_page` (1 to 100, default 20): the admin listings of seed 004.
    Numbered,
}

impl Paging {
    fn parameters(self) -> [&'static str; 2] {
        match self {
            Paging::Offset => ["limit", "offset"],
            Paging::Numbered => ["page", "per_page"],
        }
    }
}

/// What a route answers on success, as its documented responses say. Errors are in the
/// envelope either way, except a page route's, which are pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// JSON in the envelope (`success`, then `data`), or no body.
    Envelope,
    /// Its own representation: a page, a file, a document, or JSON a seed fixes the shape of.
    Raw,
}

impl Answer {
    fn documented(operation: &Operation) -> Self {
        let enveloped = |content: &serde_json::Value| {
            let schema = &content["schema"];
            let named = schema["$ref"]
                .as_str()
                .is_some_and(|r| r.contains("Envelope"));
            named || schema["properties"]["success"].is_object()
        };
        let raw = operation
            .responses
            .responses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, response)| serde_json::to_value(response).expect("serialisable"))
            .any(|response| {
                let contents = response["content"].as_object().cloned().unwrap_or_default();
                contents.values().any(|content| !enveloped(content))
            });
        if raw {
            Answer::Raw
        } else {
            Answer::Envelope
        }
    }
}

/// A permission a route needs, checked before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub action: Action,
    pub resource: Resource,
}

/// One route's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub access: Access,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
    pub rate: RateClass,
    pub answer: Answer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

impl Policy {
    /// A request no route serves: anyone may be told so, at the general budget's cost.
    pub const UNROUTED: Policy = Policy {
        access: Access::Anyone,
        permission: None,
        rate: RateClass::General,
        answer: Answer::Envelope,
        paging: None,
    };

    /// The policy of `operation`, its access read from its documentation. Panics when the
    /// declared paging and the documented parameters disagree: a programming error any test
    /// that starts the app catches.
    pub fn of(operation: &Operation, declared: Declared, id: &str) -> Self {
        let parameters: Vec<&str> = operation
            .parameters
            .iter()
            .flatten()
            .map(|parameter| parameter.name.as_str())
            .collect();
        for paging in [Paging::Offset, Paging::Numbered] {
            let documented = paging.parameters().iter().all(|p| parameters.contains(p));
            assert_eq!(
                documented,
                declared.paging == Some(paging),
                "{id}: documented {paging:?} parameters and declared paging disagree"
            );
        }
        let access = Access::documented(operation);
        assert!(
            declared.permission.is_none() || access == Access::SignedIn,
            "{id} needs a permission, so it needs a bearer token"
        );
        Policy {
            access,
            permission: declared.permission,
            rate: declared.rate,
            answer: Answer::documented(operation),
            paging: declared.paging,
        }
    }
}

/// What an area declares of one operation; the rest of its policy (access, answer) comes
/// from its documentation.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    pub permission: Option<Permission>,
    pub rate: RateClass,
    pub paging: Option<Paging>,
}

impl Default for Declared {
    fn default() -> Self {
        Self {
            permission: None,
            rate: RateClass::General,
            paging: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use domain::access::{Action, Resource};

    use super::{Access, Answer, Paging, Permission, Policy};

    fn policy(method: Method, path: &str) -> Policy {
        crate::routes::table(&Default::default()).policy(&method, path)
    }

    #[test]
    fn each_policy_comes_from_the_table_and_the_document() {
        let job = "/api/v2/jobs/0191e8f2-8c3e-7d3c-9a43-2b7c3f1d2e4f";
        let users = policy(Method::GET, "/api/admin/users");
        assert_eq!(users.access, Access::SignedIn);
        assert_eq!(users.paging, Some(Paging::Numbered));
        let read_users = Permission {
            action: Action::Read,
            resource: Resource::User,
        };
        assert_eq!(users.permission, Some(read_users));
        let jobs = policy(Method::GET, "/api/v2/jobs");
        assert_eq!(
            (jobs.paging, jobs.answer),
            (Some(Paging::Offset), Answer::Envelope)
        );
        let download = policy(Method::GET, &format!("{job}/download"));
        assert_eq!(download.access, Access::SignedInOrFilePass);
        let weekly = policy(Method::GET, "/api/v2/weekly-montages");
        assert_eq!(weekly.access, Access::AnyoneOrSignedIn);
        // Seed 001 fixes the shapes of the login and health answers.
        for (method, path) in [(Method::POST, "/api/auth/login"), (Method::GET, "/health")] {
            let page = policy(method, path);
            assert_eq!(
                (page.access, page.answer),
                (Access::Anyone, Answer::Raw),
                "{path}"
            );
        }
        assert_eq!(policy(Method::GET, "/api/v2/nowhere"), Policy::UNROUTED);
    }
}
