//! Throttling and injected faults. Faults (a share of 429, 500 and 503 answers, dropped
//! connections) apply to whole HTTP requests; throttling budgets apply per request, batch
//! items included.

use actix_web::HttpResponse;

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error_with};
use crate::state::{Faults, State};

/// Throttling buckets per app and tenant.
#[derive(Debug, Default)]
pub(crate) struct Throttle {}

/// What a request admitted by the throttle carries to [`finish`].
#[derive(Debug)]
pub(crate) struct Ticket;

/// Admits a request or answers 429.
pub(crate) fn admit(
    _state: &State,
    _caller: &Caller,
    _req: &GraphRequest,
) -> Result<Ticket, GraphResponse> {
    Ok(Ticket)
}

/// Adds throttling headers to an answer.
pub(crate) fn finish(
    _state: &State,
    _caller: &Caller,
    _ticket: Ticket,
    response: GraphResponse,
) -> GraphResponse {
    response
}

/// A fault chosen for one HTTP request.
pub(crate) enum Injected {
    /// Answer this instead.
    Respond(GraphResponse),
    /// Drop the connection part way through the answer.
    Drop,
}

fn roll() -> f64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS random number generator works");
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks the fault for this request, if any, from the configured shares.
pub(crate) fn injected_fault(faults: &Faults) -> Option<Injected> {
    let total = faults.rate_429 + faults.rate_500 + faults.rate_503 + faults.drop_rate;
    if total <= 0.0 {
        return None;
    }
    let r = roll();
    let mut edge = faults.rate_429;
    if r < edge {
        let retry = 1 + (roll() * 2.0) as u64;
        return Some(Injected::Respond(graph_error_with(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
            vec![("Retry-After".into(), retry.to_string())],
        )));
    }
    edge += faults.rate_500;
    if r < edge {
        return Some(Injected::Respond(graph_error_with(
            500,
            "generalException",
            "An internal server error occurred.",
            Vec::new(),
        )));
    }
    edge += faults.rate_503;
    if r < edge {
        return Some(Injected::Respond(graph_error_with(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
            vec![("Retry-After".into(), "1".into())],
        )));
    }
    edge += faults.drop_rate;
    (r < edge).then_some(Injected::Drop)
}

/// An answer whose body breaks off: the client sees the connection drop mid-response.
pub(crate) fn dropped_connection() -> HttpResponse {
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = vec![
        Ok(actix_web::web::Bytes::from_static(b"{\"value\":[{\"id\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injection: connection dropped",
        )),
    ];
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_stream(chunks))
}

fn futures_stream(
    items: Vec<Result<actix_web::web::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<actix_web::web::Bytes, std::io::Error>> {
    struct Iter(std::vec::IntoIter<Result<actix_web::web::Bytes, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<actix_web::web::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}
