//! The part every producer, consumer and admin client shares: configuration, client id,
//! connections, name-server discovery and the topic-route cache.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use ringmq_proto::body::{JsonBody, TopicRouteData};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::remoting::{ConnectionPool, ServerRequestHandler};
use crate::requests;
use crate::route::TopicRoute;

/// The topic every broker with `autoCreateTopicEnable` serves as the template for new topics.
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";

/// Name servers, tried from a random start and then round robin past failures (Java
/// `NettyRemotingClient.getAndCreateNameserverChannel`).
struct NameServers {
    addrs: Vec<String>,
    current: Cell<usize>,
}

impl NameServers {
    fn new(addrs: Vec<String>) -> NameServers {
        assert!(!addrs.is_empty(), "validated config has name servers");
        let start = rand::random::<usize>() % addrs.len();
        NameServers {
            addrs,
            current: Cell::new(start),
        }
    }
}

/// Shared state of one client instance.
pub(crate) struct ClientCore {
    pub(crate) config: ClientConfig,
    pub(crate) client_id: String,
    pub(crate) pool: ConnectionPool,
    namesrv: NameServers,
    routes: RefCell<HashMap<String, Rc<TopicRoute>>>,
}

impl ClientCore {
    pub(crate) fn new(
        config: ClientConfig,
        handler: Option<ServerRequestHandler>,
    ) -> Result<Rc<ClientCore>, ClientError> {
        config.validate()?;
        let client_id = config.build_client_id();
        Ok(Rc::new(ClientCore {
            pool: ConnectionPool::new(config.connect_timeout_ms, handler)
                .with_credentials(config.credentials.clone()),
            namesrv: NameServers::new(config.namesrv_addrs.clone()),
            client_id,
            config,
            routes: RefCell::new(HashMap::new()),
        }))
    }

    /// Sends `request` to a name server: the current one, then each other one once if the
    /// current cannot be reached or does not answer in time. An error *response* is returned
    /// as a response (it is the name server's answer, not its failure).
    pub(crate) async fn invoke_namesrv(
        &self,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        let count = self.namesrv.addrs.len();
        let start = self.namesrv.current.get();
        let mut last_error = None;
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let addr = &self.namesrv.addrs[index];
            match self
                .pool
                .invoke(addr, request.clone(), self.config.request_timeout_ms)
                .await
            {
                Ok(response) => {
                    self.namesrv.current.set(index);
                    return Ok(response);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "name server request failed; trying next");
                    last_error = Some(e);
                }
            }
        }
        Err(ClientError::NameServerUnavailable {
            last: Box::new(last_error.expect("at least one name server was tried")),
        })
    }

    /// The name server currently preferred (for tests and diagnostics).
    pub(crate) fn current_namesrv(&self) -> &str {
        &self.namesrv.addrs[self.namesrv.current.get()]
    }

    /// GET_ROUTEINFO_BY_TOPIC. TOPIC_NOT_EXIST comes back as [`ClientError::Server`] with code 17.
    pub(crate) async fn fetch_route_data(
        &self,
        topic: &str,
    ) -> Result<TopicRouteData, ClientError> {
        let request = requests::route_request(topic);
        let request_code = request.code;
        let response = self.invoke_namesrv(request).await?;
        let addr = self.current_namesrv().to_string();
        requests::expect_success(&addr, request_code, &response)?;
        TopicRouteData::from_json(&response.body).map_err(|e| ClientError::BadResponse {
            addr,
            request_code,
            detail: format!("route body for {topic}: {e}"),
        })
    }

    /// The cached route of `topic`, fetching it on first use. For consumers and admin calls: an
    /// unknown topic is an error.
    pub(crate) async fn route(&self, topic: &str) -> Result<Rc<TopicRoute>, ClientError> {
        if let Some(route) = self.cached_route(topic) {
            return Ok(route);
        }
        let data = self.fetch_route_data(topic).await.map_err(|e| {
            if e.response_code() == Some(ResponseCode::TopicNotExist.code()) {
                ClientError::NoRoute {
                    topic: topic.to_string(),
                }
            } else {
                e
            }
        })?;
        Ok(self.store_route(topic, TopicRoute::new(topic, data)))
    }

    /// The route a producer sends with: the topic's own route, or, while the name servers do not
    /// know the topic, one derived from TBW102 so the first send makes the broker create it.
    pub(crate) async fn publish_route(
        &self,
        topic: &str,
        default_queue_nums: i32,
    ) -> Result<Rc<TopicRoute>, ClientError> {
        if let Some(route) = self.cached_route(topic) {
            if !route.write_queues.is_empty() {
                return Ok(route);
            }
        }
        let route = self.fetch_publish_route(topic, default_queue_nums).await?;
        Ok(self.store_route(topic, route))
    }

    async fn fetch_publish_route(
        &self,
        topic: &str,
        default_queue_nums: i32,
    ) -> Result<TopicRoute, ClientError> {
        match self.fetch_route_data(topic).await {
            Ok(data) => Ok(TopicRoute::new(topic, data)),
            Err(e) if e.response_code() == Some(ResponseCode::TopicNotExist.code()) => {
                let template = self
                    .fetch_route_data(AUTO_CREATE_TOPIC_KEY)
                    .await
                    .map_err(|e| {
                        if e.response_code() == Some(ResponseCode::TopicNotExist.code()) {
                            ClientError::NoRoute {
                                topic: topic.to_string(),
                            }
                        } else {
                            e
                        }
                    })?;
                tracing::debug!(%topic, "topic unknown to the name server; sending via TBW102");
                Ok(TopicRoute::from_template(
                    topic,
                    &template,
                    default_queue_nums,
                ))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn cached_route(&self, topic: &str) -> Option<Rc<TopicRoute>> {
        self.routes.borrow().get(topic).cloned()
    }

    fn store_route(&self, topic: &str, route: TopicRoute) -> Rc<TopicRoute> {
        let route = Rc::new(route);
        self.routes
            .borrow_mut()
            .insert(topic.to_string(), route.clone());
        route
    }

    /// Re-fetches the route of every cached topic. A topic that became unknown keeps its last
    /// route (Java does the same), except that a producer (`template_queue_nums` set) refreshes
    /// its TBW102-derived route; a failing name server is logged and retried next period.
    pub(crate) async fn refresh_routes(&self, template_queue_nums: Option<i32>) {
        let topics: Vec<String> = self.routes.borrow().keys().cloned().collect();
        for topic in topics {
            match self.fetch_route_data(&topic).await {
                Ok(data) => {
                    let route = TopicRoute::new(&topic, data);
                    let changed = self.cached_route(&topic).map(|r| r.data != route.data);
                    if changed != Some(false) {
                        tracing::debug!(%topic, "route changed");
                        self.store_route(&topic, route);
                    }
                }
                Err(e) if e.response_code() == Some(ResponseCode::TopicNotExist.code()) => {
                    // A producer's TBW102-derived route stays until the topic appears; refresh the
                    // template itself so that broker changes are seen.
                    let Some(queue_nums) = template_queue_nums else {
                        continue;
                    };
                    if let Ok(route) = self.fetch_publish_route(&topic, queue_nums).await {
                        self.store_route(&topic, route);
                    }
                }
                Err(e) => tracing::warn!(%topic, error = %e, "route refresh failed"),
            }
        }
    }

    /// Every broker address in the cached routes, by broker name and id.
    pub(crate) fn known_brokers(&self) -> BTreeMap<String, BTreeMap<i64, String>> {
        let mut brokers = BTreeMap::new();
        for route in self.routes.borrow().values() {
            for (name, addrs) in route.broker_addrs() {
                brokers
                    .entry(name)
                    .or_insert_with(BTreeMap::new)
                    .extend(addrs);
            }
        }
        brokers
    }

    /// Master addresses of every cached route.
    pub(crate) fn known_master_addrs(&self) -> BTreeSet<String> {
        self.known_brokers()
            .values()
            .filter_map(|ids| ids.get(&ringmq_proto::body::MASTER_ID).cloned())
            .collect()
    }

    /// Every broker address (masters and slaves) of every cached route.
    pub(crate) fn known_broker_addrs(&self) -> BTreeSet<String> {
        self.known_brokers()
            .values()
            .flat_map(|ids| ids.values().cloned())
            .collect()
    }

    /// Sends `request` to a broker and waits at most the configured request timeout.
    pub(crate) async fn invoke_broker(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        self.pool
            .invoke(addr, request, self.config.request_timeout_ms)
            .await
    }
}
