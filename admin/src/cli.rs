//! mqadmin's verbs and flags (`-n` name server, `-b` broker address, `-c` cluster, `-t` topic,
//! `-g` group, `-k` key, `-i` msgId), so operators' habits and scripts carry over.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ringmq-admin",
    version,
    about = "mqadmin's verbs for ringmq and Apache RocketMQ"
)]
pub struct Cli {
    /// Name server addresses, `ip:port;ip:port` (default: $NAMESRV_ADDR).
    #[arg(short = 'n', long = "namesrvAddr", global = true)]
    pub namesrv: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Request timeout in milliseconds.
    #[arg(long = "timeoutMillis", global = true, default_value_t = 5_000)]
    pub timeout_ms: u64,
    #[command(subcommand)]
    pub verb: Verb,
}

/// Where a broker-side verb applies: one broker (`-b ip:port`) or every master of a cluster.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Broker address, ip:port.
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker: Option<String>,
    /// Cluster name: every master broker of the cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster: Option<String>,
}

#[derive(Subcommand, Debug)]
#[command(rename_all = "camelCase")]
pub enum Verb {
    /// List clusters, their brokers and throughput.
    ClusterList {
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// A broker's runtime status table.
    BrokerStatus(#[command(flatten)] Target),
    /// Every topic the name servers know.
    TopicList,
    /// A topic's route (JSON, as mqadmin prints it).
    TopicRoute {
        #[arg(short = 't', long)]
        topic: String,
    },
    /// Min and max offset of each queue of a topic.
    TopicStatus {
        #[arg(short = 't', long)]
        topic: String,
    },
    /// Create or update a topic on a broker or every master of a cluster.
    UpdateTopic(UpdateTopic),
    /// Delete a topic from the cluster's brokers and the name servers.
    DeleteTopic {
        #[arg(short = 't', long)]
        topic: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster: String,
    },
    /// Create or update a subscription group.
    UpdateSubGroup(UpdateSubGroup),
    /// Delete a subscription group.
    DeleteSubGroup {
        #[command(flatten)]
        target: Target,
        #[arg(short = 'g', long = "groupName")]
        group: String,
        /// Also remove the group's committed offsets.
        #[arg(short = 'r', long = "removeOffset")]
        remove_offset: bool,
    },
    /// Per-queue broker offset, consumer offset and lag of a group.
    ConsumerProgress {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 't', long)]
        topic: Option<String>,
    },
    /// The live consumers of a group.
    ConsumerConnection {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
    },
    /// What each live consumer of a group reports about itself (GET_CONSUMER_RUNNING_INFO,
    /// forwarded by a broker): one row per consumer, or one consumer's queues with `-i`.
    ConsumerStatus {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
        #[arg(short = 'i', long = "clientId")]
        client_id: Option<String>,
    },
    /// The live producers of a group (on a topic's brokers).
    ProducerConnection {
        #[arg(short = 'g', long = "producerGroup")]
        group: String,
        #[arg(short = 't', long)]
        topic: String,
    },
    /// A message by msgId (UNIQ_KEY with `-t`, or offsetMsgId); with `-g` and `-d`, the live
    /// consumer `-d` of group `-g` also consumes it once (CONSUME_MESSAGE_DIRECTLY) and its
    /// listener's result is printed.
    QueryMsgById(QueryById),
    /// Each live consumer's own offsets of a topic for a group (INVOKE_BROKER_TO_GET_CONSUMER_
    /// STATUS, which the broker gathers from the consumers); one consumer with `-i`.
    GetConsumerStatus {
        #[arg(short = 'g', long = "group")]
        group: String,
        #[arg(short = 't', long)]
        topic: String,
        #[arg(short = 'i', long = "originClientId")]
        client_id: Option<String>,
    },
    /// Messages by key.
    QueryMsgByKey(QueryByKey),
    /// A message by queue and offset.
    QueryMsgByOffset {
        #[arg(short = 't', long)]
        topic: String,
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        #[arg(short = 'i', long = "queueId")]
        queue_id: i32,
        #[arg(short = 'o', long)]
        offset: i64,
    },
    /// Reset a group's offsets of a topic to a point in time.
    ResetOffsetByTime(ResetOffset),
    /// A broker's configuration.
    GetBrokerConfig(#[command(flatten)] Target),
    /// Change one key of a broker's configuration at run time.
    UpdateBrokerConfig {
        #[command(flatten)]
        target: Target,
        #[arg(short = 'k', long)]
        key: String,
        #[arg(short = 'v', long)]
        value: String,
    },
    /// Make a broker's queues read-only in every name server's routes.
    WipeWritePerm {
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
    },
    /// Send one message.
    SendMessage(SendMessage),
    /// Read messages of a topic (or one queue) and print them.
    ConsumeMessage(ConsumeMessage),
}

#[derive(Args, Debug)]
pub struct UpdateTopic {
    #[command(flatten)]
    pub target: Target,
    #[arg(short = 't', long)]
    pub topic: String,
    #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
    pub read_queue_nums: i32,
    #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
    pub write_queue_nums: i32,
    /// 2 write, 4 read, 6 read and write.
    #[arg(short = 'p', long, default_value_t = 6)]
    pub perm: i32,
    #[arg(short = 'o', long, default_value_t = false)]
    pub order: bool,
}

#[derive(Args, Debug)]
pub struct UpdateSubGroup {
    #[command(flatten)]
    pub target: Target,
    #[arg(short = 'g', long = "groupName")]
    pub group: String,
    #[arg(short = 's', long = "consumeEnable", default_value_t = true, action = clap::ArgAction::Set)]
    pub consume_enable: bool,
    #[arg(short = 'm', long = "consumeFromMinEnable", default_value_t = true, action = clap::ArgAction::Set)]
    pub consume_from_min_enable: bool,
    #[arg(short = 'd', long = "consumeBroadcastEnable", default_value_t = true, action = clap::ArgAction::Set)]
    pub consume_broadcast_enable: bool,
    #[arg(short = 'q', long = "retryQueueNums", default_value_t = 1)]
    pub retry_queue_nums: i32,
    #[arg(short = 'r', long = "retryMaxTimes", default_value_t = 16)]
    pub retry_max_times: i32,
}

#[derive(Args, Debug)]
pub struct QueryById {
    #[arg(short = 'i', long = "msgId")]
    pub msg_id: String,
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// Consumer group of the consumer that should consume the message (with `-d`).
    #[arg(short = 'g', long = "consumerGroup", requires = "client_id")]
    pub group: Option<String>,
    /// Client id of that consumer (with `-g`).
    #[arg(short = 'd', long = "clientId", requires = "group")]
    pub client_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct QueryByKey {
    #[arg(short = 't', long)]
    pub topic: String,
    #[arg(short = 'k', long = "msgKey")]
    pub key: String,
    /// Earliest store time, ms since the epoch.
    #[arg(short = 'b', long = "beginTimestamp", default_value_t = 0)]
    pub begin_ms: i64,
    /// Latest store time, ms since the epoch (default: now).
    #[arg(short = 'e', long = "endTimestamp")]
    pub end_ms: Option<i64>,
    #[arg(short = 'c', long = "maxNum", default_value_t = 64)]
    pub max: i32,
}

#[derive(Args, Debug)]
pub struct ResetOffset {
    #[arg(short = 'g', long)]
    pub group: String,
    #[arg(short = 't', long)]
    pub topic: String,
    /// `now`, ms since the epoch, or `yyyy-MM-dd#HH:mm:ss:SSS` (UTC).
    #[arg(short = 's', long)]
    pub timestamp: String,
    #[arg(short = 'f', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SendMessage {
    #[arg(short = 't', long)]
    pub topic: String,
    #[arg(short = 'p', long)]
    pub body: String,
    #[arg(short = 'k', long)]
    pub keys: Option<String>,
    #[arg(short = 'c', long)]
    pub tags: Option<String>,
    /// Send to this broker's queue `-i` only.
    #[arg(short = 'b', long = "broker")]
    pub broker_name: Option<String>,
    #[arg(short = 'i', long = "qid")]
    pub queue_id: Option<i32>,
}

#[derive(Args, Debug)]
pub struct ConsumeMessage {
    #[arg(short = 't', long)]
    pub topic: String,
    #[arg(short = 'b', long = "brokerName")]
    pub broker_name: Option<String>,
    #[arg(short = 'i', long = "queueId")]
    pub queue_id: Option<i32>,
    /// First offset (default: the queue's min offset).
    #[arg(short = 'o', long)]
    pub offset: Option<i64>,
    /// At most this many messages in all.
    #[arg(short = 'c', long = "messageNumber", default_value_t = 128)]
    pub count: usize,
    #[arg(short = 'g', long = "consumerGroup", default_value = "TOOLS_CONSUMER")]
    pub group: String,
}
