//! The parts of the OpenAPI document that are not per route: its description, the bearer
//! authentication every `/v1` route needs, and the problem+json answer any of them can give.

use problem::Problem;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

pub(crate) fn base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("rollcall internal API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Tenants, tokens, integrations, users, teams, events, issues, invitations \
                     and dead letters. Every call needs `Authorization: Bearer <token>`: the \
                     operator token sees every tenant, a tenant token only its own (another \
                     tenant's objects answer 404). Lists take `limit` (1-500) and `cursor` and \
                     answer `{\"items\": [...], \"next_cursor\": ...}`.",
                )),
        )
        .build()
}

/// Adds the bearer scheme and the problem answer to every operation of `document`.
pub(crate) fn finish(mut document: OpenApi) -> OpenApi {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    let problem = ResponseBuilder::new()
        .description("An error, as application/problem+json (RFC 9457)")
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build();
    let requirement = SecurityRequirement::new("bearer", Vec::<String>::new());
    for item in document.paths.paths.values_mut() {
        for operation in operations(item) {
            operation.security = Some(vec![requirement.clone()]);
            operation
                .responses
                .responses
                .insert("default".to_owned(), problem.clone().into());
        }
    }
    document
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}
