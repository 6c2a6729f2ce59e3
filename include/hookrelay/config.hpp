// The configuration as parsed from YAML: plain data, validated for shape by config::load().
// Rule conditions and templates are kept as written (with their file positions) and compiled
// by the rules module, so every error can name file:line:column.
#pragma once

#include <hookrelay/cidr.hpp>
#include <hookrelay/event.hpp>
#include <hookrelay/secret.hpp>
#include <hookrelay/trigger.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay {

/// A position in the config file (1-based; 0 when unknown).
struct Location {
    int line = 0;
    int column = 0;
};

/// One problem found in a config file. Printed as "file:line:column: message".
struct ConfigError {
    std::string file;
    Location where;
    std::string message;
};

/// "file:line:column: message" (or "file: message" without a position).
std::string to_string(const ConfigError& error);

/// The public webhook listener.
struct ServerConfig {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;                   ///< 0 picks a free port (tests)
    std::size_t body_limit = 25u * 1024 * 1024;  ///< bytes; larger bodies get 413
    /// Bytes one JSON parse may use (parsed value + parser scratch); more gets 413. Loading a
    /// config sets it to 4 × body_limit unless given.
    std::size_t parse_memory_limit = 100u * 1024 * 1024;
    std::size_t header_limit = 64u * 1024;             ///< bytes of request line + headers
    std::chrono::milliseconds header_timeout{10'000};  ///< to receive the full header block
    std::chrono::milliseconds body_timeout{30'000};    ///< to receive the body after the headers
    std::chrono::milliseconds idle_timeout{60'000};    ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{10'000};   ///< to send a response
    std::chrono::milliseconds store_timeout{5'000};    ///< for the store to accept a delivery
    /// At the cap an idle kept-alive connection (or one that has waited over a second for its
    /// first request) is closed to make room; when none can be, the new one gets 503.
    std::size_t max_connections = 1024;
    std::size_t max_connections_per_client = 64;  ///< per peer address; trusted proxies exempt
    /// Request bodies held in memory at once, over all connections; one that does not fit is
    /// answered 503 before it is read.
    std::size_t body_memory = 128u * 1024 * 1024;
    std::size_t body_memory_per_client = 32u * 1024 * 1024;  ///< of body_memory, per client
    unsigned threads = 2;  ///< network threads running the one io_context
    std::chrono::milliseconds shutdown_grace{8'000};  ///< finish in-flight requests on SIGTERM
    /// Reverse proxies whose forwarding header names the client (allowlists, logs, limits).
    std::vector<Cidr> trusted_proxies;
    std::string forwarded_header = "x-forwarded-for";  ///< or "forwarded" (RFC 7239)
    Location forwarded_where;

    /// TLS on the webhook listener: certificate chain and key, PEM, each a file path or a secret
    /// reference (${file:..}, ${credential:..}, ${env:..}). Read at start and on every reload.
    struct Tls {
        std::string certificate;  ///< path or reference, as written
        std::string key;          ///< path or reference, as written
        Location certificate_where;
        Location key_where;
    };
    std::optional<Tls> tls;
};

/// Where a generic source finds a delivery's event name or delivery id: a request header, or a
/// field of the JSON payload ("payload.a.b" as written).
struct ValueRef {
    enum class From { none, header, payload };
    From from = From::none;
    std::string name;  ///< header name, or the path below the payload ("a.b")
    Location where;
};

/// How a generic source's sender signs (`signature:`).
struct SignatureSpec {
    enum class Algorithm { sha1, sha256, sha512 };
    enum class Encoding { hex, base64 };
    std::string header;  ///< the header carrying the signature
    Algorithm algorithm = Algorithm::sha256;
    Encoding encoding = Encoding::hex;
    std::string prefix;  ///< stripped before decoding, e.g. "sha256="; case-insensitive
    /// Header with the Unix time (seconds) the sender signed at; empty: none. When set, the
    /// signed content must include it and deliveries outside timestamp_window are refused.
    std::string timestamp_header;
    /// What the HMAC covers: text with {body}, {timestamp} and {delivery_id} placeholders,
    /// e.g. "{timestamp}.{body}". Default: the raw body alone.
    std::string content = "{body}";
    Location where;
};

/// A source's `status:`: post commit statuses to the forge for the triggers of its deliveries
/// (GitHub, GitLab). Off when absent.
struct StatusConfig {
    Secret token;                ///< GitHub: a token with repo:status; GitLab: api scope
    std::string context;         ///< "" = "hookrelay/<rule>"; else every rule's statuses use it
    std::string api_url;         ///< "" = the provider's (forge_status::default_api_url)
    std::string ca_file;         ///< PEM bundle for the API's TLS; empty: the system CAs
    unsigned max_in_flight = 4;  ///< concurrent posts per instance
    std::chrono::milliseconds connect_timeout{5'000};   ///< resolve + TCP connect + TLS handshake
    std::chrono::milliseconds request_timeout{30'000};  ///< one whole post
    std::chrono::milliseconds retry_initial{2'000};     ///< first retry delay of a failed post
    std::chrono::milliseconds retry_max{300'000};       ///< retry delay cap
    /// Failed posts of one status before it is given up (retried with backoff up to retry_max:
    /// the default rides out a forge outage of several hours).
    unsigned max_tries = 50;
    Location where;
};

/// A webhook source: one forge endpoint with its own path and secrets.
struct SourceConfig {
    std::string name;  ///< key under `sources:`
    Provider provider = Provider::github;
    std::string path;  ///< URL path, default "/hooks/<name>"
    /// The shared secret: HMAC keys (GitHub, Gitea, Forgejo, Bitbucket, generic) or GitLab's
    /// secret tokens. Any one verifies (rotation).
    std::vector<Secret> secrets;
    /// GitLab: Standard Webhooks signing tokens ("whsec_<base64>") for `webhook-signature`.
    std::vector<Secret> signing_tokens;
    /// Gitea, Forgejo, Bitbucket Data Center: values the Authorization header must equal (the
    /// webhook's "Authorization header" field), any one of them.
    std::vector<Secret> authorization;
    /// GitLab signing tokens and generic sources with a timestamp header: how far the signed
    /// timestamp may lie from now, either way.
    std::chrono::milliseconds timestamp_window{std::chrono::minutes(5)};
    std::optional<SignatureSpec> signature;  ///< generic: how deliveries are signed
    ValueRef event_name;                     ///< generic: where the event name is
    ValueRef delivery_id;                    ///< generic: where the delivery id is
    bool insecure = false;                   ///< accept deliveries without any secret configured
    bool allow_sha1 = false;                 ///< GitHub: also accept legacy X-Hub-Signature (sha1)
    /// When non-empty, only clients in these ranges may deliver to this source (403 otherwise).
    std::vector<Cidr> allow_from;
    /// A delivery whose body equals one this source received this recently is a duplicate,
    /// whatever its delivery id. Unset: off for deliveries with an id, 1 h for those without
    /// (see ingest::duplicate_body_window()); 0: off for every delivery.
    std::optional<std::chrono::milliseconds> duplicate_body_window;
    std::optional<StatusConfig> status;  ///< `status:`: commit statuses back to the forge
    Location where;
};

/// Exponential backoff with full jitter: attempt n waits a random time in
/// [0, min(max_delay, initial * 2^n)]; a trigger older than max_age goes dead.
struct RetryPolicy {
    std::chrono::milliseconds initial{1'000};
    std::chrono::milliseconds max_delay{300'000};
    std::chrono::milliseconds max_age{86'400'000};
};

/// A Jenkins controller triggers are delivered to.
struct JenkinsConfig {
    std::string name;  ///< key under `jenkins:`
    std::string url;   ///< base URL, ends with '/'
    std::string user;
    Secret api_token;
    std::string ca_file;                                ///< PEM bundle for HTTPS; empty: system CAs
    std::chrono::milliseconds connect_timeout{5'000};   ///< resolve + TCP connect + TLS handshake
    std::chrono::milliseconds io_timeout{10'000};       ///< each write and each read
    std::chrono::milliseconds request_timeout{30'000};  ///< one whole request, all phases
    unsigned max_in_flight = 4;                         ///< concurrent requests to this Jenkins
    RetryPolicy retry;  ///< default for triggers to this Jenkins (rules may override)
    std::chrono::milliseconds probe_initial{1'000};  ///< first probe delay while held (down)
    std::chrono::milliseconds probe_max{30'000};     ///< probe backoff cap
    /// `follow:` default of its rules: how far a delivered trigger is followed to its build.
    FollowMode follow = FollowMode::finished;
    unsigned follow_max_in_flight = 2;  ///< concurrent follow reads, over every instance
    std::chrono::milliseconds follow_poll_initial{2'000};  ///< first poll after delivery
    std::chrono::milliseconds follow_poll_max{60'000};     ///< poll backoff cap
    std::chrono::milliseconds follow_max_age{86'400'000};  ///< then following gives up
    /// Multibranch: at most one scan per project this often, over every instance.
    std::chrono::milliseconds scan_interval{60'000};
    /// Multibranch: how long a new branch's job may take to appear (from the trigger's
    /// creation); then the trigger is dead.
    std::chrono::milliseconds branch_wait{600'000};
    /// Multibranch: how often the branch job is tried again while it does not exist yet.
    std::chrono::milliseconds branch_poll{5'000};
    Location where;
};

/// The durable store.
struct StoreConfig {
    enum class Backend { sqlite, postgres };
    Backend backend = Backend::sqlite;
    bool keep_body = true;  ///< store raw bodies (needed to redeliver); false: a SHA-256 only
    std::chrono::milliseconds retention{7 * 86'400'000LL};  ///< finished records kept this long
    std::chrono::milliseconds prune_interval{3'600'000};    ///< how often to prune
    std::size_t max_batch = 512;  ///< deliveries per transaction (group commit)
    std::size_t max_size = 0;     ///< sqlite: bytes the database may grow to; 0 = unlimited
    /// sqlite: answer a webhook once its record is synced to the intake log
    /// (<state_dir>/intake/), and index it into the database behind it. The PostgreSQL store
    /// ignores it (a loaded config has it false there).
    bool intake_log = true;

    /// store.postgres: several instances sharing one PostgreSQL database.
    struct Postgres {
        Secret url;              ///< libpq connection URI or key=value string (holds the password)
        unsigned pool_size = 4;  ///< connections per instance
        std::chrono::milliseconds connect_timeout{5'000};    ///< to connect (and reconnect)
        std::chrono::milliseconds statement_timeout{5'000};  ///< any one statement
        std::chrono::milliseconds reconnect_max{10'000};     ///< reconnect backoff cap
        Location where;
    };
    Postgres postgres;
};

/// The dispatcher that delivers stored triggers.
struct DispatchConfig {
    unsigned max_in_flight = 32;                     ///< requests in flight over all Jenkins
    std::chrono::milliseconds poll_interval{1'000};  ///< safety-net poll for due triggers
    /// A claimed trigger is this instance's for this long; renewed while its request runs. When
    /// an instance dies, its claims are taken over by others after at most this long.
    std::chrono::milliseconds claim_lease{10'000};
    std::chrono::milliseconds claim_renew_interval{2'000};  ///< also the instance heartbeat
};

/// A pattern as written in a condition: glob, "!glob" (negation) or "re:<RE2>".
struct PatternSpec {
    std::string text;
    Location where;
};

/// A condition tree as written under `when:`.
struct ConditionSpec {
    enum class Kind { field, all, any, not_ };
    Kind kind = Kind::all;
    std::string field;                  ///< Kind::field: the key as written ("branch", "payload.x")
    std::vector<PatternSpec> patterns;  ///< Kind::field: the values as written (scalars as text)
    std::vector<ConditionSpec> children;  ///< all/any: each child; not_: exactly one
    Location where;
};

/// A template string with its position.
struct TemplateSpec {
    std::string text;
    Location where;
};

/// What a matching rule queues.
struct TriggerSpec {
    std::string jenkins;  ///< name of a `jenkins:` entry
    Location jenkins_where;
    /// '/'-separated folder path; '/' inside a rendered value stays in its segment. For a
    /// `multibranch:` or `scan:` trigger: the multibranch project's path.
    TemplateSpec job;
    std::vector<std::pair<std::string, TemplateSpec>> parameters;  ///< in config order
    std::optional<Secret> token;  ///< Jenkins job "Trigger builds remotely" token
    /// `multibranch:` + `branch:`: `job` is the multibranch project, `branch` its branch job
    /// (one item name, a '/' in it included).
    bool multibranch = false;
    std::optional<TemplateSpec> branch;
    /// `scan:`: only ask Jenkins to scan the multibranch project `job`; nothing is built.
    bool scan = false;
};

struct RuleSpec {
    std::string name;
    std::optional<RetryPolicy> retry;  ///< overrides the Jenkins entry's retry policy
    ConditionSpec when;  ///< Kind::all of the keys under `when:` (empty: matches everything)
    bool stop = false;   ///< when this rule matches, later rules are not evaluated
    std::vector<TriggerSpec> triggers;  ///< `trigger:` (one map) or a list of them
    std::optional<FollowMode> follow;   ///< overrides the Jenkins entry's `follow`
    /// `status:` of the rule: false turns the source's statuses off for it; a map may set
    /// `context`. nullopt: the source's.
    std::optional<bool> status_enabled;
    std::string status_context;  ///< "" = the source's (or hookrelay/<rule>)
    /// `coalesce:` key template: a newer trigger with the same rendered key supersedes an older
    /// one still waiting. nullopt: every trigger goes out.
    std::optional<TemplateSpec> coalesce;
    /// `cancel_superseded:`: once delivered, cancel older triggers' Jenkins queue items of the
    /// same key that have not started.
    bool cancel_superseded = false;
    Location where;
};

struct LogConfig {
    std::string level = "info";   ///< trace, debug, info, warn, error, critical, off
    std::string format = "auto";  ///< text, json, or auto (text on a terminal, else json)
};

/// The admin listener: health, metrics and the API. Never the public webhook port.
struct AdminConfig {
    bool enabled = true;
    std::string host = "127.0.0.1";
    std::uint16_t port = 9090;
    std::size_t max_connections = 64;  ///< idle keep-alives are closed to make room
    std::size_t max_connections_per_client = 16;
    /// Bearer token for /metrics and /api/*; unset: those answer 403 and the daemon warns.
    std::optional<Secret> token;
};

struct Config {
    std::string file;  ///< path it was read from (for error messages)
    ServerConfig server;
    std::string state_dir = "/var/lib/hookrelay";
    LogConfig log;
    AdminConfig admin;
    StoreConfig store;
    DispatchConfig dispatch;
    std::vector<SourceConfig> sources;
    std::vector<JenkinsConfig> jenkins;
    std::vector<RuleSpec> rules;

    const SourceConfig* find_source(std::string_view name) const noexcept;
    const JenkinsConfig* find_jenkins(std::string_view name) const noexcept;
};

/// A trigger spec's job path when it is written out (no `{{ }}`): its segments; nullopt for a
/// template.
std::optional<std::vector<std::string>> literal_job(const TriggerSpec& spec);

/// The job token (`token:`) the current config gives a stored trigger: that of its rule's
/// trigger on its Jenkins whose written-out job is the trigger's job (a multibranch trigger's
/// project), else of its rule's first templated trigger on that Jenkins. The store keeps no
/// secrets. (`check` refuses a rule whose triggers on one Jenkins would leave this ambiguous.)
/// When no rule has the trigger's rule name any more (renamed or removed while it waited): the
/// token all triggers on its Jenkins whose written-out job is its job agree on, else the one all
/// templated triggers on its Jenkins agree on; none when they disagree.
std::optional<Secret> job_token(const Config& config, const TriggerRequest& request);

}  // namespace hookrelay
