//! One route table. Each API area lists its handlers by operation, next to the OpenAPI
//! document its `#[utoipa::path]` attributes make; the path and method of every route come
//! from that document alone, so what is served and what is documented cannot differ. Routes
//! sharing a path share one resource, so a wrong method answers 405, not 404. Each route's
//! policy (`policy::Policy`) is declared here too, beside its handler; the middleware asks
//! the table once per request.

use std::collections::BTreeMap;

use actix_web::{
    dev::{HttpServiceFactory, ResourceDef},
    http::Method,
    web, FromRequest, Handler, Resource, Responder, Route,
};
use domain::access::{self, Action};
use utoipa::openapi::{path::Operation, OpenApi};

use super::policy::{Declared, Paging, Permission, Policy, RateClass};

type MakeRoute = Box<dyn Fn() -> Route + Send + Sync>;
type ConfigureResource = Box<dyn Fn(Resource) -> Resource + Send + Sync>;

/// The routes of one API area and their documentation.
pub struct Area {
    doc: OpenApi,
    handlers: BTreeMap<&'static str, MakeRoute>,
    resources: BTreeMap<&'static str, ConfigureResource>,
    declared: BTreeMap<&'static str, Declared>,
}

impl Area {
    /// An area documented by `doc` (an `#[derive(OpenApi)]` listing its handlers).
    pub fn new(doc: OpenApi) -> Self {
        Self {
            doc,
            handlers: BTreeMap::new(),
            resources: BTreeMap::new(),
            declared: BTreeMap::new(),
        }
    }

    fn declare(mut self, operations: &[&'static str], change: impl Fn(&mut Declared)) -> Self {
        for operation in operations {
            change(self.declared.entry(operation).or_default());
        }
        self
    }

    /// `operations` spend the `class` budget rather than the general one.
    pub fn rate(self, class: RateClass, operations: &[&'static str]) -> Self {
        self.declare(operations, |declared| declared.rate = class)
    }

    /// `operation` needs the caller's roles to allow `action` on `resource`.
    pub fn permit(
        self,
        operation: &'static str,
        action: Action,
        resource: access::Resource,
    ) -> Self {
        let permission = Permission { action, resource };
        self.declare(&[operation], |declared| {
            declared.permission = Some(permission)
        })
    }

    /// `operations` are listings paged by `paging`'s parameters.
    pub fn paged(self, paging: Paging, operations: &[&'static str]) -> Self {
        self.declare(operations, |declared| declared.paging = Some(paging))
    }

    /// Serves `operation` (the handler's name, its default operation id) with `handler`, at
    /// the path and method its documentation gives.
    pub fn handle<F, Args>(mut self, operation: &'static str, handler: F) -> Self
    where
        F: Handler<Args> + Clone + Send + Sync + 'static,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.handlers.insert(
            operation,
            Box::new(move || web::route().to(handler.clone())),
        );
        self
    }

    /// Adjusts the resource that serves `operation` (say, a larger body limit).
    pub fn resource(
        mut self,
        operation: &'static str,
        configure: impl Fn(Resource) -> Resource + Send + Sync + 'static,
    ) -> Self {
        self.resources.insert(operation, Box::new(configure));
        self
    }
}

struct Entry {
    path: String,
    method: Method,
    operation: &'static str,
    /// The path as a pattern, to find a request's route before routing.
    pattern: ResourceDef,
    policy: Policy,
}

/// Every area's routes.
pub struct RouteTable {
    areas: Vec<Area>,
    entries: Vec<(usize, Entry)>,
}

impl RouteTable {
    /// Checks that every documented operation has a handler and every handler is
    /// documented; a mismatch is a programming error, caught by any test that starts the app.
    pub fn new(areas: Vec<Area>) -> Self {
        let mut entries: Vec<(usize, Entry)> = Vec::new();
        for (index, area) in areas.iter().enumerate() {
            let mut served: Vec<&str> = Vec::new();
            for (path, item) in &area.doc.paths.paths {
                for (method, operation_doc) in operations(item) {
                    let id = operation_doc.operation_id.as_deref().unwrap_or_default();
                    let (operation, _) = area.handlers.get_key_value(id).unwrap_or_else(|| {
                        panic!("{method} {path} ({id}) is documented but has no handler")
                    });
                    // Generated clients name their functions by operation id: one id, one route.
                    assert!(
                        entries.iter().all(|(_, e)| e.operation != *operation),
                        "operation id {operation} is used twice"
                    );
                    served.push(operation);
                    let declared = area.declared.get(operation).copied().unwrap_or_default();
                    let entry = Entry {
                        pattern: ResourceDef::new(path.as_str()),
                        path: path.clone(),
                        method,
                        operation,
                        policy: Policy::of(operation_doc, declared, operation),
                    };
                    entries.push((index, entry));
                }
            }
            for handler in area.handlers.keys() {
                assert!(
                    served.contains(handler),
                    "handler {handler} has no documented operation"
                );
            }
            for declared in area.declared.keys() {
                assert!(
                    served.contains(declared),
                    "{declared} is declared but not served"
                );
            }
        }
        Self { areas, entries }
    }

    /// The policy of a request's route, or `Policy::UNROUTED` when none matches (a 404 costs
    /// a client like any other call).
    pub fn policy(&self, method: &Method, path: &str) -> Policy {
        self.entries
            .iter()
            .map(|(_, entry)| entry)
            .find(|entry| entry.method == method && entry.pattern.is_match(path))
            .map_or(Policy::UNROUTED, |entry| entry.policy)
    }

    /// The OpenAPI paths and schemas of every area, merged into `base`, each operation
    /// showing its policy as `x-policy`.
    pub fn document(&self, mut base: OpenApi) -> OpenApi {
        for area in &self.areas {
            base.merge(area.doc.clone());
        }
        for (_, entry) in &self.entries {
            let item = base.paths.paths.get_mut(&entry.path).expect("merged");
            if let Some(operation) = operation_mut(item, &entry.method) {
                let policy = serde_json::to_value(entry.policy).expect("serialisable");
                let extensions = utoipa::openapi::extensions::ExtensionsBuilder::new()
                    .add("x-policy", policy)
                    .build();
                operation
                    .extensions
                    .get_or_insert_with(Default::default)
                    .merge(extensions);
            }
        }
        base
    }

    /// Registers one resource per path, with a route per documented method.
    pub fn register(&self, cfg: &mut web::ServiceConfig) {
        let mut by_path: BTreeMap<&str, Vec<&(usize, Entry)>> = BTreeMap::new();
        for entry in &self.entries {
            by_path.entry(&entry.1.path).or_default().push(entry);
        }
        for (path, entries) in by_path {
            cfg.service(self.resource(path, &entries));
        }
    }

    fn resource(&self, path: &str, entries: &[&(usize, Entry)]) -> impl HttpServiceFactory {
        let mut resource = web::resource(path);
        for (index, entry) in entries {
            let area = &self.areas[*index];
            let make_route = &area.handlers[entry.operation];
            resource = resource.route(make_route().method(entry.method.clone()));
            if let Some(configure) = area.resources.get(entry.operation) {
                resource = configure(resource);
            }
        }
        resource
    }
}

fn operation_mut<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &Method,
) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        _ => None,
    }
}

fn operations(
    item: &utoipa::openapi::PathItem,
) -> impl Iterator<Item = (Method, &utoipa::openapi::path::Operation)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::DELETE, &item.delete),
        (Method::PATCH, &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_ref()?)))
}
