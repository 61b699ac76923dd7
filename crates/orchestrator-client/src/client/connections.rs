//! PE's Node Inventory API v1 (`/inventory/v1`, beside `/orchestrator/v1`
//! on the same host and port): connection entries of agentless (SSH)
//! nodes.
//!
//! Queries and `delete-connection` (removing certnames twice removes them
//! once) are retried like reads; `create-connection` is sent at most once
//! once it may have reached the server, since a second one would answer
//! 409 (or, with `replace`, make a second entry).

use orchestrator_types::{
    ConnectionCreated, ConnectionList, ConnectionsQuery, CreateConnection, DeleteConnection,
    INVENTORY_PREFIX,
};
use reqwest::{Method, Url};

use super::Client;
use super::submit::Sent;
use super::transport::to_body;
use crate::error::Error;

impl Client {
    /// `https://host:8143/inventory/v1/<segments>`: the orchestrator's base
    /// URL with `/orchestrator/v1` replaced.
    fn inventory_url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.inner.base.clone();
        let path = url.path().trim_end_matches('/');
        let root = path
            .strip_suffix(orchestrator_types::API_PREFIX)
            .unwrap_or(path)
            .to_owned();
        url.set_path(&format!("{root}{INVENTORY_PREFIX}"));
        url.path_segments_mut()
            .map_err(|()| Error::Config {
                message: format!("{} cannot be a base URL", self.inner.base_str),
            })?
            .extend(segments);
        Ok(url)
    }

    /// `POST /inventory/v1/command/create-connection`: the new entry's id.
    pub async fn create_connection(
        &self,
        req: &CreateConnection,
    ) -> Result<ConnectionCreated, Error> {
        let url = self.inventory_url(&["command", "create-connection"])?;
        match self
            .send_at_most_once::<ConnectionCreated>("create-connection", &url, req)
            .await?
        {
            Sent::Created(c) => Ok(c),
            Sent::Unknown(cause) => Err(Error::ConnectionUncertain {
                certnames: req.certnames.join(","),
                cause,
            }),
        }
    }

    /// `POST /inventory/v1/command/delete-connection`: `certnames` leave
    /// every entry.
    pub async fn delete_connection(&self, certnames: &[String]) -> Result<(), Error> {
        let body = DeleteConnection {
            certnames: certnames.to_vec(),
        };
        let url = self.inventory_url(&["command", "delete-connection"])?;
        self.call(Method::POST, url, Some(to_body(&body)?)).await
    }

    /// `POST /inventory/v1/query/connections`: the entries of
    /// `q.certnames` (all when `None`).
    pub async fn connections(&self, q: &ConnectionsQuery) -> Result<ConnectionList, Error> {
        let url = self.inventory_url(&["query", "connections"])?;
        self.call(Method::POST, url, Some(to_body(q)?)).await
    }

    /// `GET /inventory/v1/query/connections`: every entry, or `certname`'s.
    pub async fn connections_get(
        &self,
        certname: Option<&str>,
        sensitive: bool,
    ) -> Result<ConnectionList, Error> {
        let mut url = self.inventory_url(&["query", "connections"])?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(c) = certname {
                q.append_pair("certname", c);
            }
            if sensitive {
                q.append_pair("sensitive", "true");
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.call(Method::GET, url, None).await
    }
}

#[cfg(test)]
mod tests {
    use crate::Settings;

    use super::*;

    #[test]
    fn the_inventory_api_sits_beside_the_orchestrator_api() {
        for (service, want) in [
            (
                "https://pe:8143",
                "https://pe:8143/inventory/v1/query/connections",
            ),
            (
                "https://pe:8143/orchestrator/v1/",
                "https://pe:8143/inventory/v1/query/connections",
            ),
            (
                "http://127.0.0.1:9000/prefix",
                "http://127.0.0.1:9000/prefix/inventory/v1/query/connections",
            ),
        ] {
            let s = Settings {
                service_url: service.to_owned(),
                cacert: None,
                token_file: None,
                environment: None,
                insecure: false,
                request_timeout: std::time::Duration::from_secs(1),
                retry: crate::RetryPolicy::default(),
            };
            let (c, _) = Client::new(&s).unwrap();
            assert_eq!(
                c.inventory_url(&["query", "connections"]).unwrap().as_str(),
                want
            );
        }
    }
}
