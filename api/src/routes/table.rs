//! One route table. Each API area lists its handlers by operation, next to the OpenAPI
//! document its `#[utoipa::path]` attributes make; the path and method of every route come
//! from that document alone, so what is served and what is documented cannot differ. Routes
//! sharing a path share one resource, so a wrong method answers 405, not 404. Each route's
//! rate class is declared here too, beside its handler; the limiter asks the table.

use std::collections::BTreeMap;

use actix_web::{
    dev::{HttpServiceFactory, ResourceDef},
    http::Method,
    web, FromRequest, Handler, Resource, Responder, Route,
};
use utoipa::openapi::OpenApi;

type MakeRoute = Box<dyn Fn() -> Route + Send + Sync>;
type ConfigureResource = Box<dyn Fn(Resource) -> Resource + Send + Sync>;

/// Which of seed 001's request budgets a route spends, per caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The routes of one API area and their documentation.
pub struct Area {
    doc: OpenApi,
    handlers: BTreeMap<&'static str, MakeRoute>,
    resources: BTreeMap<&'static str, ConfigureResource>,
    rates: BTreeMap<&'static str, RateClass>,
}

impl Area {
    /// An area documented by `doc` (an `#[derive(OpenApi)]` listing its handlers).
    pub fn new(doc: OpenApi) -> Self {
        Self {
            doc,
            handlers: BTreeMap::new(),
            resources: BTreeMap::new(),
            rates: BTreeMap::new(),
        }
    }

    /// `operations` spend the `class` budget rather than the general one.
    pub fn rate(mut self, class: RateClass, operations: &[&'static str]) -> Self {
        for operation in operations {
            self.rates.insert(operation, class);
        }
        self
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
    rate: RateClass,
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
                for (method, operation) in operations(item) {
                    let id = operation.operation_id.as_deref().unwrap_or_default();
                    let (operation, _) = area.handlers.get_key_value(id).unwrap_or_else(|| {
                        panic!("{method} {path} ({id}) is documented but has no handler")
                    });
                    // Generated clients name their functions by operation id: one id, one route.
                    assert!(
                        entries.iter().all(|(_, e)| e.operation != *operation),
                        "operation id {operation} is used twice"
                    );
                    served.push(operation);
                    let entry = Entry {
                        pattern: ResourceDef::new(path.as_str()),
                        path: path.clone(),
                        method,
                        operation,
                        rate: area
                            .rates
                            .get(operation)
                            .copied()
                            .unwrap_or(RateClass::General),
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
            for rated in area.rates.keys() {
                assert!(served.contains(rated), "{rated} is rated but not served");
            }
        }
        Self { areas, entries }
    }

    /// The budget a request spends: its route's, or the general one when no route matches
    /// (a 404 costs a client like any other call).
    pub fn rate_class(&self, method: &Method, path: &str) -> RateClass {
        self.entries
            .iter()
            .map(|(_, entry)| entry)
            .find(|entry| entry.method == method && entry.pattern.is_match(path))
            .map_or(RateClass::General, |entry| entry.rate)
    }

    /// The OpenAPI paths and schemas of every area, merged into `base`.
    pub fn document(&self, mut base: OpenApi) -> OpenApi {
        for area in &self.areas {
            base.merge(area.doc.clone());
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
