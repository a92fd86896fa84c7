//! An `azure_core` HTTP transport over this crate's reqwest client, so `azure_identity` and
//! other Azure SDK clients share our rustls stack and trusted roots (azure_core is built
//! without its own reqwest feature).

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::error::{Error as AzureError, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Method, Request, Transport};

use crate::cloud::CloudConfig;

/// An [`azure_core::http::HttpClient`] that sends requests with a `reqwest::Client`.
#[derive(Debug, Clone)]
pub struct AzureCoreTransport {
    http: reqwest::Client,
}

impl AzureCoreTransport {
    /// A transport over this client.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// As the `transport` of an `azure_core::http::ClientOptions`.
    pub fn into_transport(self) -> Transport {
        Transport::new(Arc::new(self))
    }
}

#[async_trait::async_trait]
impl HttpClient for AzureCoreTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let method = match request.method() {
            Method::Delete => reqwest::Method::DELETE,
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Patch => reqwest::Method::PATCH,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            other => {
                return Err(AzureError::with_message(
                    ErrorKind::Other,
                    format!("HTTP method {other:?} is not supported by this transport"),
                ));
            }
        };
        let mut builder = self.http.request(method, request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            Body::SeekableStream(_) => {
                return Err(AzureError::with_message(
                    ErrorKind::Other,
                    "streaming request bodies are not supported by this transport",
                ));
            }
        };
        let response = builder.send().await.map_err(|e| {
            let kind = if e.is_connect() {
                ErrorKind::Connection
            } else {
                ErrorKind::Io
            };
            AzureError::new(kind, e.without_url())
        })?;
        let status = response.status().as_u16();
        let headers: HashMap<HeaderName, HeaderValue> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                let v = v.to_str().ok()?;
                Some((
                    HeaderName::from(k.as_str().to_owned()),
                    HeaderValue::from(v.to_owned()),
                ))
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| AzureError::new(ErrorKind::Io, e.without_url()))?;
        Ok(AsyncRawResponse::from_bytes(
            status.into(),
            Headers::from(headers),
            body,
        ))
    }
}

impl CloudConfig {
    /// The same cloud as `azure_core` describes it (for `ClientOptions::cloud`): its
    /// authority host, for `azure_identity` credentials.
    pub fn to_azure_core(&self) -> azure_core::cloud::CloudConfiguration {
        match self.authority_host.as_str() {
            "https://login.microsoftonline.com" => {
                azure_core::cloud::CloudConfiguration::AzurePublic
            }
            "https://login.microsoftonline.us" => {
                azure_core::cloud::CloudConfiguration::AzureGovernment
            }
            "https://login.chinacloudapi.cn" => azure_core::cloud::CloudConfiguration::AzureChina,
            other => {
                let mut custom = azure_core::cloud::CustomConfiguration::default();
                custom.authority_host = other.to_owned();
                custom.into()
            }
        }
    }
}
