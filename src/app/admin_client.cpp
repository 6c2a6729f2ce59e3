#include "app/admin_client.hpp"

#include "app/discovery.hpp"
#include "config/load.hpp"
#include "follow/story.hpp"
#include "secrets/resolve.hpp"

#include <hookrelay/printable.hpp>

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace hookrelay::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

// The CLI waits at most this long for the daemon to answer.
constexpr std::chrono::seconds k_request_deadline{15};

struct Endpoint {
    std::string host = "127.0.0.1";
    std::string port = "9090";
    std::string token;
    std::string token_origin;  ///< where the token came from ("" = none was found)
    std::string origin =
        "the default, as no config was found ($HOOKRELAY_CONFIG is unset and "
        "/etc/hookrelay/hookrelay.yaml does not exist)";
};

struct Options {
    std::string config_path;
    std::string admin;  // host:port
    std::string token_file;
    bool json = false;
    bool want_token = true;  ///< false: /healthz and /readyz need none
};

struct Reply {
    unsigned status = 0;
    std::string body;
    std::string error;
};

asio::awaitable<void> exchange(Endpoint ep, std::string method, std::string target,
                               std::string body, Reply& out) {
    auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(executor);
    beast::tcp_stream stream(executor);
    stream.expires_after(k_request_deadline);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(ep.host, ep.port, asio::as_tuple(asio::use_awaitable));
    if (rec) {
        out.error = "resolve " + ep.host + ": " + rec.message();
        co_return;
    }
    auto [cec, connected] =
        co_await stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    (void)connected;
    if (cec) {
        out.error = fmt::format("connect {}:{}: {} (is hookrelay running? this address is {})",
                                ep.host, ep.port, cec.message(), ep.origin);
        co_return;
    }
    bhttp::request<bhttp::string_body> req{method == "POST" ? bhttp::verb::post : bhttp::verb::get,
                                           target, 11};
    req.set(bhttp::field::host, ep.host);
    if (!ep.token.empty()) req.set(bhttp::field::authorization, "Bearer " + ep.token);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec) {
        out.error = "write: " + wec.message();
        co_return;
    }
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    // A stored delivery body is as large as the daemon's server.body_limit allowed, which the
    // CLI does not know (Beast's default would stop at 8 MB); the deadline still bounds the read.
    parser.body_limit(boost::none);
    auto [rdec, rn] =
        co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)rn;
    if (rdec) {
        out.error = "read: " + rdec.message();
        co_return;
    }
    auto res = parser.release();
    out.status = res.result_int();
    out.body = std::move(res.body());
}

// A field of the daemon's JSON answer; nullopt when the answer is not an object with it.
std::optional<json::value> answer_field(const std::string& body, const char* key) {
    boost::system::error_code ec;
    const auto value = json::parse(body, ec);
    const auto* field = ec || !value.is_object() ? nullptr : value.as_object().if_contains(key);
    if (field == nullptr) return std::nullopt;
    return *field;
}

Reply call(const Endpoint& ep, std::string method, std::string target, std::string body = {}) {
    asio::io_context ioc;
    Reply out;
    // An escaped exception reaches the caller as an error, not a silent empty reply.
    asio::co_spawn(ioc, exchange(ep, std::move(method), std::move(target), std::move(body), out),
                   [](std::exception_ptr e) {
                       if (e) std::rethrow_exception(e);
                   });
    ioc.run();
    if (out.status == 401) {
        // Which token was sent, and how to send the daemon's.
        const auto error = answer_field(out.body, "error");
        std::string reason = error && error->is_string() ? std::string(error->get_string())
                                                         : "missing or wrong bearer token";
        reason += ep.token_origin.empty()
                      ? ": no token was sent (none in $HOOKRELAY_ADMIN_TOKEN or --token-file, "
                        "and no config with admin.token found: --config, $HOOKRELAY_CONFIG, "
                        "/etc/hookrelay/hookrelay.yaml)"
                      : ": the token sent, from " + ep.token_origin +
                            ", is not the running daemon's admin.token";
        out.body = json::serialize(json::object{{"error", reason}});
    }
    return out;
}

std::string read_token_file(const std::string& path) {
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    return token;
}

// The admin token the config references (admin.token), resolved now. An empty result with an
// empty *why means the config names no token.
std::string config_token(const std::string& path, std::string* why) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const std::exception&) {
        return {};  // config::load_file has reported it already
    }
    const auto node = root["admin"] ? root["admin"]["token"] : YAML::Node();
    if (!node || !node.IsScalar()) return {};
    const auto reference = node.as<std::string>();
    std::string reason;
    auto token = secrets::resolve(reference, secrets::Environment::process(), &reason);
    if (!token) {
        *why = fmt::format(
            "admin.token in {} is {}, which cannot be read here: {}. Set it, or pass "
            "--token-file FILE",
            path, reference, reason);
        return {};
    }
    return std::string(token->reveal());
}

// The admin address: --admin; else admin.listen from the config (--config, $HOOKRELAY_CONFIG,
// /etc/hookrelay/hookrelay.yaml); else 127.0.0.1:9090. The token: --token-file; else
// $HOOKRELAY_ADMIN_TOKEN; else the config's admin.token.
bool resolve_endpoint(const Options& o, Endpoint& ep, std::ostream& err) {
    const char* env = std::getenv("HOOKRELAY_ADMIN_TOKEN");
    const bool env_token = env != nullptr && *env != 0;
    const bool need_token = o.want_token && o.token_file.empty() && !env_token;
    const bool need_config = o.admin.empty() || need_token;
    const auto path = need_config ? discover_config(o.config_path) : std::nullopt;
    if (path) {
        // Only admin.* matters here: the other secrets may exist only inside the service, and a
        // mistake elsewhere in the file (made since the daemon loaded it) must not fail a probe.
        config::LoadOptions load_options;
        load_options.resolve_secrets = false;
        load_options.admin_only = true;
        auto loaded = config::load_file(*path, load_options);
        if (!loaded.errors.empty()) {
            for (const auto& e : loaded.errors) err << to_string(e) << '\n';
            return false;
        }
        const auto& admin = loaded.config->admin;
        if (!admin.enabled) {
            err << "hookrelay: " << *path
                << " disables the admin listener (admin.enabled: false)\n";
            return false;
        }
        ep.host = admin.host == "0.0.0.0" ? "127.0.0.1" : (admin.host == "::" ? "::1" : admin.host);
        ep.port = std::to_string(admin.port);
        ep.origin = "admin.listen in " + *path;
        if (need_token) {
            std::string why;
            ep.token = config_token(*path, &why);
            if (!why.empty()) {
                err << "hookrelay: " << why << '\n';
                return false;
            }
            if (!ep.token.empty()) ep.token_origin = "admin.token in " + *path;
        }
    }
    if (!o.admin.empty()) {
        const auto colon = o.admin.rfind(':');
        if (colon == std::string::npos) {
            err << "--admin must be host:port, e.g. 127.0.0.1:9090\n";
            return false;
        }
        ep.host = o.admin.substr(0, colon);
        ep.port = o.admin.substr(colon + 1);
        ep.origin = "--admin";
        if (ep.host.size() > 2 && ep.host.front() == '[')
            ep.host = ep.host.substr(1, ep.host.size() - 2);
    }
    if (!o.want_token) return true;
    if (env_token) {
        ep.token = env;
        ep.token_origin = "$HOOKRELAY_ADMIN_TOKEN";
    }
    if (!o.token_file.empty()) {
        std::ifstream in(o.token_file);
        if (!in) {
            err << "hookrelay: cannot read --token-file " << o.token_file << '\n';
            return false;
        }
        ep.token = read_token_file(o.token_file);
        if (ep.token.empty()) {
            err << "hookrelay: --token-file " << o.token_file
                << " is empty (its first line is the token)\n";
            return false;
        }
        ep.token_origin = "--token-file " + o.token_file;
    }
    return true;
}

std::string encode(std::string_view s) {
    return boost::urls::encode(s, boost::urls::unreserved_chars);
}

// Prints an API answer: JSON as is with --json, else via `table`. Returns the exit code.
int present(const Reply& r, const Options& o,
            const std::function<void(const json::value&)>& table) {
    if (r.status == 0) {
        std::cerr << "hookrelay: " << r.error << '\n';
        return 2;
    }
    boost::system::error_code ec;
    auto value = json::parse(r.body, ec);
    if (r.status >= 300) {
        std::string reason = r.body;
        if (!ec && value.is_object()) {
            if (auto* e = value.as_object().if_contains("error"); e && e->is_string()) {
                reason = std::string(e->get_string());
            }
        }
        std::cerr << "hookrelay: the daemon answered " << r.status << ": " << reason << '\n';
        if (o.json) std::cout << r.body;
        return 1;
    }
    if (o.json || ec) {
        std::cout << r.body;
        return 0;
    }
    table(value);
    return 0;
}

// A member as text to print. What the forge sent (a repository name, a ref, a delivery id) is
// printed with its control characters as \xNN: it cannot move the cursor, retitle the terminal
// or hide what follows.
std::string str(const json::value& v, std::string_view key) {
    if (auto* o = v.if_object()) {
        if (auto* x = o->if_contains(key)) {
            if (x->is_string()) return printable_text(x->get_string());
            if (x->is_null()) return "";
            return json::serialize(*x);
        }
    }
    return "";
}

// At most `width` characters (bytes), "…" marking a cut.
std::string fit(std::string text, std::size_t width) {
    if (text.size() <= width) return text;
    text.resize(width - 1);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) {
        text.pop_back();  // never half a UTF-8 character
    }
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
    return text + "…";
}

// `deliveries list`: the daemon answers a listing whose filter it checks on every row (say
// --source with --state) a stretch of deliveries at a time, so a page may come back short with a
// next_cursor. Follows it until there are `limit` items or no more, and prints them as one page.
// `filters` is the query string without limit and cursor ("" or "?a=b&..."). Asks once, as
// given, when the limit is not a number (the daemon says what is wrong with it).
Reply list_deliveries(const Endpoint& ep, const std::string& filters, const std::string& limit,
                      std::string cursor) {
    const auto page = [&](const std::string& page_limit) {
        std::string q = filters + (filters.empty() ? "?" : "&") + "limit=" + encode(page_limit);
        if (!cursor.empty()) q += "&cursor=" + encode(cursor);
        return call(ep, "GET", "/api/v1/deliveries" + q);
    };
    std::size_t wanted = 50;
    if (!limit.empty()) {
        const auto [p, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), wanted);
        if (ec != std::errc{} || p != limit.data() + limit.size() || wanted == 0) {
            return page(limit);
        }
    }
    json::array items;
    std::string hint;  // the last page's: an unknown --source
    // A filter that matches nothing would otherwise walk the whole store, request after request:
    // past this many, what was found is printed with the cursor to go on from.
    constexpr int k_max_requests = 100;
    for (int requests = 1;; ++requests) {
        Reply r = page(std::to_string(wanted - items.size()));
        if (r.status != 200) return r;
        boost::system::error_code ec;
        auto v = json::parse(r.body, ec);
        const auto* answer = ec ? nullptr : v.if_object();
        const auto* found = answer ? answer->if_contains("deliveries") : nullptr;
        if (found == nullptr || !found->is_array()) return r;  // shown as it came
        if (filters.find("repository=") != std::string::npos ||
            filters.find("ref=") != std::string::npos) {
            if (!answer->contains("filtered_by")) {
                // An older daemon ignores them and lists everything: not a filtered answer.
                Reply refused;
                refused.error =
                    "the daemon does not filter by --repo or --ref (a hookrelay older than this "
                    "command); upgrade it, or list with --since and read the REPOSITORY and REF "
                    "columns";
                return refused;
            }
        }
        for (const auto& d : found->as_array()) items.push_back(d);
        hint = str(v, "hint");
        cursor = str(v, "next_cursor");
        if (items.size() >= wanted || cursor.empty() || requests >= k_max_requests) break;
    }
    const bool none = items.empty();
    json::object merged{{"deliveries", std::move(items)}};
    if (!cursor.empty()) merged["next_cursor"] = cursor;
    if (none && !hint.empty()) merged["hint"] = hint;
    Reply out;
    out.status = 200;
    out.body = json::serialize(merged) + "\n";
    return out;
}

void print_deliveries(const json::value& v) {
    const auto& items = v.at("deliveries").as_array();
    constexpr auto k_row = "{:<8} {:<20} {:<16} {:<13} {:<24} {:<16} {:<16} {}\n";
    std::cout << fmt::format(k_row, "SEQ", "RECEIVED (UTC)", "SOURCE", "EVENT", "REPOSITORY", "REF",
                             "OUTCOME", "DELIVERY");
    for (const auto& d : items) {
        auto received = str(d, "received_at");
        // To the second, without a zone: UTC, as the heading says (and --since takes it back).
        if (received.size() > 19) received.resize(19);
        auto outcome = str(d, "outcome");
        if (outcome == "unmatched") outcome = "no rule matched";
        // "#1042": how show, redeliver and duplicate answers name it (quoted in a shell).
        std::cout << fmt::format(k_row, "#" + str(d, "seq"), received, str(d, "source"),
                                 str(d, "event"), fit(str(d, "repository"), 24),
                                 fit(ref_label(str(d, "ref")), 16), outcome, str(d, "delivery_id"));
    }
    if (items.empty()) {
        std::cout << "(no deliveries match)\n";
        if (auto hint = str(v, "hint"); !hint.empty()) std::cerr << hint << '\n';
    }
    if (auto next = str(v, "next_cursor"); !next.empty()) {
        std::cout << "more: the same command with --cursor " << next
                  << " goes on (older deliveries; --since bounds how far back)\n";
    }
}

// The build line: "→ build #42 SUCCESS in 3m12s <url>", or where it stands.
void print_build(const json::value& t) {
    const auto* b = t.as_object().if_contains("build");
    if (!b || !b->is_object()) return;
    const auto& build = *b;
    if (auto merged = str(build, "merged"); merged == "true") {
        const auto with = str(build, "merged_with");
        std::cout << "    Jenkins merged it into an item already queued"
                  << (with.empty() ? std::string() : " by delivery " + with) << '\n';
    }
    std::cout << "    queued  " << str(build, "queued_at");
    if (auto q = str(build, "queue_url"); !q.empty()) std::cout << "  " << q;
    std::cout << '\n';
    const auto number = str(build, "number");
    if (!number.empty()) {
        std::cout << "    started " << str(build, "started_at") << '\n';
        if (auto f = str(build, "finished_at"); !f.empty())
            std::cout << "    finished " << f << '\n';
        std::string line = "    → build #" + number;
        if (auto result = str(build, "result"); !result.empty()) {
            line += " " + result;
            if (const auto* ms = build.as_object().if_contains("duration_ms");
                ms && ms->is_int64()) {
                line += " in " + follow::human_duration(std::chrono::milliseconds(ms->as_int64()));
            }
        } else {
            line += str(t, "following") == "true" ? " running" : " started";
        }
        std::cout << line << "  " << str(build, "url") << '\n';
    } else if (str(build, "result") == "CANCELLED") {
        std::cout << "    → cancelled in Jenkins' queue before it started\n";
    } else if (auto why = str(build, "why"); !why.empty()) {
        std::cout << "    → waiting in Jenkins' queue: " << why << '\n';
    } else if (str(t, "following") == "true") {
        std::cout << "    → in Jenkins' queue\n";
    }
    if (auto error = str(build, "error"); !error.empty()) {
        std::cout << "    → lost track of the build: " << error << '\n';
    }
}

// The commit status line: what the pull request shows (or will).
void print_commit_status(const json::value& t) {
    const auto* st = t.as_object().if_contains("status");
    if (!st || !st->is_object()) return;
    const auto& status = *st;
    auto sha = str(status, "sha");
    if (sha.size() > 12) sha.resize(12);
    std::cout << fmt::format("    status {} on {}@{}", str(status, "context"),
                             str(status, "repository"), sha);
    if (const auto* posted = status.as_object().if_contains("posted")) {
        std::cout << fmt::format(": {} \"{}\"", str(*posted, "state"), str(*posted, "description"));
    } else if (const auto error = str(status, "error");
               error.starts_with("refused") || error.starts_with("gave up")) {
        std::cout << ": none posted";  // and none will be: the error below says why
    } else {
        std::cout << ": none posted yet";
    }
    if (str(status, "up_to_date") == "false") {
        if (const auto* wanted = status.as_object().if_contains("wanted")) {
            std::cout << fmt::format(" (posting {} \"{}\")", str(*wanted, "state"),
                                     str(*wanted, "description"));
        }
    }
    if (auto error = str(status, "error"); !error.empty()) std::cout << " [" << error << "]";
    std::cout << '\n';
}

void print_delivery(const json::value& d) {
    // The forge's id, and the store's #seq (the only name of a delivery the forge gave no id).
    std::string id = str(d, "delivery_id");
    if (const auto seq = str(d, "seq"); !seq.empty()) id += (id.empty() ? "#" : "  #") + seq;
    std::cout << fmt::format("delivery {}  source {}  event {} ({})  received {}\n", id,
                             str(d, "source"), str(d, "event"), str(d, "forge_event"),
                             str(d, "received_at"));
    if (auto error = str(d, "body_error"); !error.empty()) {
        std::cout << "  body cannot be read: " << error << '\n';
    }
    if (auto* e = d.as_object().if_contains("normalized")) {
        std::cout << fmt::format("  repository {}  ref {}  commit {}  actor {}\n",
                                 str(e->at("repository"), "full_name"), str(*e, "ref"),
                                 str(*e, "commit"), str(*e, "actor"));
    } else if (!str(d, "repository").empty() || !str(d, "ref").empty()) {
        // No body to read the event from (store.keep_body: false, or its source is gone): the
        // summary stored with the delivery still names them.
        std::cout << fmt::format("  repository {}  ref {}\n", str(d, "repository"), str(d, "ref"));
    }
    const auto& triggers = d.at("triggers").as_array();
    const auto* skipped = d.as_object().if_contains("skipped");
    const auto* failures = d.as_object().if_contains("failures");
    const bool reasons = skipped && skipped->is_array() && failures && failures->is_array();
    if (triggers.empty()) {
        if (!reasons) {
            std::cout << "  no triggers (no rule matched; this hookrelay did not record why)\n";
        } else if (failures->as_array().empty()) {
            std::cout << "  no triggers: no rule matched\n";
        } else {
            std::cout << "  no triggers: rules matched but none of their triggers could be "
                         "rendered\n";
        }
    }
    // Shown for one of its triggers (show --trigger): that one is marked.
    const std::string asked = str(d, "trigger");
    for (const auto& t : triggers) {
        std::cout << fmt::format("\n  trigger {}  rule {}  → {} {}{}{}\n", str(t, "id"),
                                 str(t, "rule"), str(t, "jenkins"),
                                 str(t, "scan") == "true" ? "scan of " : "", str(t, "job"),
                                 !asked.empty() && str(t, "id") == asked ? "  (asked for)" : "");
        if (!str(t, "coalesce").empty()) {
            std::cout << fmt::format("    coalesce key {}\n", str(t, "coalesce"));
        }
        if (const auto* params = t.as_object().if_contains("parameters");
            params && params->is_object() && !params->as_object().empty()) {
            std::cout << "    parameters\n";
            for (const auto& [k, v] : params->as_object()) {
                std::cout << fmt::format(
                    "      {}={}\n", std::string_view(k),
                    v.is_string() ? printable_text(v.get_string()) : json::serialize(v));
            }
        }
        // A trigger never attempted has no last outcome: the line says so rather than end in
        // an empty "last:".
        std::cout << fmt::format(
            "    state {}  attempts {}{}{}\n", str(t, "state"), str(t, "attempts"),
            str(t, "last_outcome").empty() ? std::string() : "  last: " + str(t, "last_outcome"),
            str(t, "claimed_by").empty() ? std::string() : "  claimed by " + str(t, "claimed_by"));
        if (const auto* held = t.as_object().if_contains("held"); held && held->is_string()) {
            std::cout << fmt::format(
                "    held: jenkins {} is held{}; it goes out once Jenkins answers (hookrelay "
                "status)\n",
                str(t, "jenkins"),
                held->as_string().empty() ? std::string() : " (" + str(t, "held") + ")");
        }
        for (const auto& a : t.at("history").as_array()) {
            std::cout << fmt::format(
                "    {}  {:>4}  {:>6} ms  {}{}{}\n", str(a, "at"),
                str(a, "http_status").empty() ? "-" : str(a, "http_status"), str(a, "duration_ms"),
                str(a, "outcome"), a.at("counted").as_bool() ? "" : " (not counted)",
                str(a, "instance").empty() ? std::string() : "  on " + str(a, "instance"));
        }
        print_build(t);
        print_commit_status(t);
    }
    // One line per rule that queued nothing: its name and why, as the forge was answered. A
    // redeliver after a rule fix adds triggers and leaves these as they were: a rule with a
    // trigger now says so rather than contradict it.
    if (reasons && (!skipped->as_array().empty() || !failures->as_array().empty())) {
        std::cout << (triggers.empty() ? ""
                                       : "\n  rules that queued nothing when it was received:\n");
        // Triggers a redeliver added: created after the delivery was received (those of its
        // receipt were created with it, at its received_at).
        std::set<std::string> with_trigger;
        const auto received = str(d, "received_at");
        for (const auto& t : triggers) {
            if (str(t, "created_at") > received) with_trigger.insert(str(t, "rule"));
        }
        const auto on = [&](const json::value& r) {
            std::string out =
                str(r, "event").empty() ? std::string() : " (event #" + str(r, "event") + ")";
            if (with_trigger.count(str(r, "rule")) > 0) out += " (it has a trigger since: above)";
            return out;
        };
        for (const auto& r : skipped->as_array()) {
            std::cout << fmt::format("    rule {}: {}{}\n", str(r, "rule"), str(r, "reason"),
                                     on(r));
        }
        for (const auto& r : failures->as_array()) {
            std::cout << fmt::format(
                "    rule {} matched, but its trigger could not be rendered: {}{}\n",
                str(r, "rule"), str(r, "reason"), on(r));
        }
    }
}

// `deliveries show --headers`: the stored headers, one `Name: value` per line, as explain's
// --headers-file reads them.
void print_headers(const json::value& d) {
    const auto* headers = d.as_object().if_contains("headers");
    if (headers == nullptr || !headers->is_object()) return;
    for (const auto& [name, value] : headers->as_object()) {
        std::cout << std::string_view(name) << ": "
                  << (value.is_string() ? std::string(value.get_string()) : json::serialize(value))
                  << '\n';
    }
}

void print_status(const json::value& v) {
    std::cout << fmt::format("hookrelay {}  up {} s  {}  store {}  {} source(s)  {} rule(s)\n",
                             str(v, "version"), str(v, "uptime_seconds"),
                             v.at("ready").as_bool() ? "ready" : "NOT READY", str(v, "store"),
                             str(v, "sources"), str(v, "rules"));
    if (auto detail = str(v, "store_detail"); !detail.empty()) {
        std::cout << "store: " << detail << '\n';
    }
    std::cout << fmt::format("\n{:<16} {:<14} {:>9} {:>8}  {}\n", "JENKINS", "STATE", "IN FLIGHT",
                             "BACKLOG", "HELD BECAUSE");
    for (const auto& j : v.at("jenkins").as_array()) {
        auto because = str(j, "held_reason");
        if (auto fix = str(j, "fix"); !fix.empty()) because += "; fix " + fix + " and reload";
        std::cout << fmt::format("{:<16} {:<14} {:>9} {:>8}  {}\n", str(j, "name"), str(j, "state"),
                                 str(j, "in_flight"), str(j, "backlog"), because);
    }
    // What the background check of the config against each Jenkins found.
    for (const auto& j : v.at("jenkins").as_array()) {
        const auto* findings = j.as_object().if_contains("findings");
        if (findings == nullptr || !findings->is_array() || findings->as_array().empty()) continue;
        std::cout << "\nconfig check of jenkins " << str(j, "name") << ":\n";
        for (const auto& f : findings->as_array())
            std::cout << "  " << f.as_string().c_str() << '\n';
    }
    // Requests turned away (never stored, so `deliveries list` cannot show them): a wrong
    // secret, a wrong URL in the forge, a proxy that sends the wrong content type.
    const auto* rejections = v.as_object().if_contains("rejections");
    if (rejections && rejections->is_array() && !rejections->as_array().empty()) {
        std::cout << fmt::format(
            "\nturned away since start (not stored; the forge's delivery log shows each "
            "answer):\n{:<16} {:>6} {:>8}  {:<24}  {:<22} {}\n",
            "SOURCE", "STATUS", "COUNT", "LAST (UTC)", "LAST FROM", "LAST WHY");
        for (const auto& r : rejections->as_array()) {
            std::cout << fmt::format("{:<16} {:>6} {:>8}  {:<24}  {:<22} {}\n", str(r, "source"),
                                     str(r, "status"), str(r, "count"), str(r, "last_at"),
                                     str(r, "last_client"), str(r, "last_reason"));
        }
    }
    // Every daemon sharing the store (one with SQLite). In flight is this instance's; the
    // backlog and held state are the whole cluster's.
    const auto* instances = v.as_object().if_contains("instances");
    if (instances && instances->is_array() && !instances->as_array().empty()) {
        std::cout << fmt::format("\n{:<34} {:<20} {:<10} {:<24} {:<24} {:>6}\n", "INSTANCE", "HOST",
                                 "VERSION", "STARTED (UTC)", "LAST HEARTBEAT (UTC)", "CLAIMS");
        for (const auto& i : instances->as_array()) {
            const bool self = i.as_object().if_contains("self") && i.at("self").as_bool();
            std::cout << fmt::format("{:<34} {:<20} {:<10} {:<24} {:<24} {:>6}\n",
                                     str(i, "id") + (self ? " *" : ""), str(i, "host"),
                                     str(i, "version"), str(i, "started_at"),
                                     str(i, "heartbeat_at"), str(i, "claims"));
        }
    }
    // Instances whose configs send a Jenkins name's triggers to different servers.
    const auto* disagreements = v.as_object().if_contains("disagreements");
    if (disagreements && disagreements->is_array() && !disagreements->as_array().empty()) {
        std::cout << "\ninstances disagree on their jenkins entries (each sends the triggers it "
                     "claims to its own url; give every instance the same config):\n";
        for (const auto& line : disagreements->as_array()) {
            std::cout << "  " << line.as_string().c_str() << '\n';
        }
    }
}

void print_replayed(const json::value& v) {
    const auto& ids = v.at("replayed").as_array();
    std::cout << "re-queued " << ids.size() << " trigger(s)\n";
    for (const auto& id : ids) std::cout << "  " << id.as_string().c_str() << '\n';
    if (!ids.empty()) {
        std::cout << "(hookrelay deliveries show --trigger ID: a trigger's attempts and build)\n";
    }
    if (const auto warning = str(v, "warning"); !warning.empty()) {
        std::cerr << "warning: " << warning << '\n';
    }
    if (const auto* in_flight = v.as_object().if_contains("in_flight");
        in_flight != nullptr && in_flight->is_array() && !in_flight->as_array().empty()) {
        std::cout << "left " << in_flight->as_array().size()
                  << " trigger(s) as they were: being delivered right now (their build request "
                     "may be on its way); replay them once their outcome is in\n";
        for (const auto& id : in_flight->as_array()) {
            std::cout << "  " << id.as_string().c_str() << '\n';
        }
    }
    const auto* more = v.as_object().if_contains("more");
    if (more != nullptr && more->is_bool() && more->as_bool()) {
        std::cout << fmt::format(
            "the limit of {} was reached, so more {} triggers may match: run the same command "
            "again for the next ones (it takes the oldest first, so any of these that are {} "
            "again by then come first: fix their cause first, or narrow it with --jenkins; "
            "--since does not leave them out, since their state changed again)\n",
            str(v, "limit"), str(v, "state"), str(v, "state"));
    }
}

int unexpected_answer(const std::string& body) {
    std::cerr << "hookrelay: unexpected answer from the daemon: " << body << '\n';
    return 1;
}

// A bulk replay of delivered triggers runs builds that already ran: ask first. Interactive (a
// terminal on stdin): a y/N question on `err`; otherwise refuse and say how to confirm.
bool confirm_rerun(std::size_t count, bool interactive, std::istream& in, std::ostream& err) {
    const auto what = fmt::format(
        "{} delivered trigger(s) match; replaying them runs their builds in Jenkins again", count);
    if (!interactive) {
        err << "hookrelay: " << what << ". Nothing was re-queued: add --yes to confirm.\n";
        return false;
    }
    err << what << ". Re-run them? [y/N] " << std::flush;
    std::string answer;
    std::getline(in, answer);
    if (answer == "y" || answer == "Y" || answer == "yes") return true;
    err << "nothing re-queued\n";
    return false;
}

// `--rule NAME`: how many triggers of the other rules were left out.
void print_left_out(const json::value& v) {
    const auto* left_out = v.as_object().if_contains("left_out");
    if (left_out == nullptr || !left_out->is_number()) return;
    std::cout << fmt::format("  only rule {}: {} trigger(s) of other rules left out\n",
                             str(v, "rule"), left_out->to_number<std::int64_t>());
}

void print_redelivered(const json::value& v) {
    const auto& triggers = v.at("triggers").as_array();
    std::cout << fmt::format("delivery {} ran through the current rules: {} trigger(s) queued\n",
                             str(v, "delivery"), triggers.size());
    print_left_out(v);
    for (const auto& t : triggers) {
        std::cout << fmt::format("  {}  rule {}  → {} {}\n", str(t, "id"), str(t, "rule"),
                                 str(t, "jenkins"), str(t, "job"));
    }
    for (const auto& r : v.at("rules").as_array()) {
        if (!r.at("matched").as_bool()) {
            std::cout << fmt::format("  rule {} did not match: {}\n", str(r, "name"),
                                     str(r, "reason"));
        }
    }
    // Matched, and queued nothing: without this line "0 trigger(s) queued" said nothing of why.
    if (const auto* failures = v.as_object().if_contains("failures");
        failures != nullptr && failures->is_array()) {
        for (const auto& f : failures->as_array()) {
            std::cout << fmt::format(
                "  rule {} matched, but its trigger could not be rendered: {}\n", str(f, "rule"),
                str(f, "reason"));
        }
    }
}

// `deliveries replay --state S --dry-run`: what the same replay would re-queue now.
void print_replay_dry_run(const json::value& v) {
    const auto& ids = v.at("matching").as_array();
    std::cout << "would re-queue " << ids.size() << " trigger(s) (dry run: nothing changed)\n";
    for (const auto& id : ids) std::cout << "  " << id.as_string().c_str() << '\n';
    if (const auto* in_flight = v.as_object().if_contains("in_flight");
        in_flight != nullptr && in_flight->is_array() && !in_flight->as_array().empty()) {
        std::cout << "and leave " << in_flight->as_array().size()
                  << " trigger(s) as they are: being delivered right now\n";
    }
    const auto* more = v.as_object().if_contains("more");
    if (more != nullptr && more->is_bool() && more->as_bool()) {
        std::cout << "that is the limit of " << str(v, "limit")
                  << ": more may match, for a second run\n";
    }
}

// `deliveries redeliver --dry-run`: what the current rules would queue, nothing queued.
void print_redeliver_dry_run(const json::value& v) {
    const auto& triggers = v.at("triggers").as_array();
    std::cout << fmt::format(
        "delivery {} through the current rules would queue {} trigger(s) (dry run: nothing "
        "queued)\n",
        str(v, "delivery"), triggers.size());
    print_left_out(v);
    for (const auto& t : triggers) {
        std::cout << fmt::format("  rule {}  → {} {}\n", str(t, "rule"), str(t, "jenkins"),
                                 str(t, "job"));
        for (const auto& [k, p] : t.at("parameters").as_object()) {
            std::cout << fmt::format(
                "      {}={}\n", std::string_view(k),
                p.is_string() ? printable_text(p.get_string()) : json::serialize(p));
        }
    }
    for (const auto& r : v.at("rules").as_array()) {
        if (!r.at("matched").as_bool()) {
            std::cout << fmt::format("  rule {} did not match: {}\n", str(r, "name"),
                                     str(r, "reason"));
        }
    }
    for (const auto& f : v.at("failures").as_array()) {
        std::cout << fmt::format("  rule {} matched, but its trigger could not be rendered: {}\n",
                                 str(f, "rule"), str(f, "reason"));
    }
}

void add_connection_options(CLI::App* app, Options& o) {
    app->add_option("-c,--config", o.config_path,
                    "Config file for admin.listen and admin.token (default: $HOOKRELAY_CONFIG, "
                    "then /etc/hookrelay/hookrelay.yaml, else 127.0.0.1:9090)");
    app->add_option("--admin", o.admin, "Admin listener, host:port (overrides the config)");
    app->add_option("--token-file", o.token_file,
                    "File holding the admin token (or set $HOOKRELAY_ADMIN_TOKEN)");
    app->add_flag("--json", o.json, "Print the API's JSON instead of a table");
}

}  // namespace

std::function<int()> add_admin_commands(CLI::App& cli) {
    auto options = std::make_shared<Options>();
    auto list = std::make_shared<std::map<std::string, std::string>>();
    auto ids = std::make_shared<std::vector<std::string>>();
    auto source = std::make_shared<std::string>();
    auto yes = std::make_shared<bool>(false);

    auto* status = cli.add_subcommand("status", "Show the running daemon's state per Jenkins");
    add_connection_options(status, *options);

    auto ready = std::make_shared<bool>(false);
    auto* health = cli.add_subcommand(
        "health",
        "Ask the running daemon's /healthz (or /readyz): exit 0 healthy, 1 not, 2 unreachable");
    add_connection_options(health, *options);
    health->add_flag("--ready", *ready,
                     "Ask /readyz: listeners bound and the store writable (readiness)");

    auto* reload = cli.add_subcommand("reload", "Make the running daemon re-read its config");
    add_connection_options(reload, *options);

    auto* deliveries = cli.add_subcommand("deliveries", "Inspect, replay and redeliver deliveries");
    deliveries->require_subcommand(1);
    auto* ls = deliveries->add_subcommand("list", "List deliveries, newest first");
    add_connection_options(ls, *options);
    for (const char* key : {"source", "state", "outcome", "since", "limit", "cursor"}) {
        const std::string name = key;
        ls->add_option("--" + name, (*list)[key],
                       name == "since"     ? "Received at or after: a time in UTC "
                                             "(2026-11-24T08:00:00, as listed; or with Z or "
                                             "+hh:mm) or an age (24h)"
                       : name == "outcome" ? "Filter: unmatched, held, pending, retrying, dead, "
                                             "delivered, queued, building, started, SUCCESS, "
                                             "UNSTABLE, FAILURE, ABORTED, NOT_BUILT, CANCELLED, "
                                             "lost, superseded"
                                           : "Filter: " + name);
    }
    ls->add_option("--repo", (*list)["repository"],
                   "Filter: the repository's full name (acme/app; any case)");
    ls->add_option("--ref", (*list)["ref"],
                   "Filter: the ref, full (refs/heads/main) or a branch or tag name (main), or "
                   "a pull request as the list shows it ('PR #7', 'MR !7')");
    auto show_body = std::make_shared<bool>(false);
    auto show_headers = std::make_shared<bool>(false);
    auto* show = deliveries->add_subcommand(
        "show",
        "One delivery: its event, each trigger's parameters and history, and why each rule that "
        "queued nothing did not; --body / --headers print what was received, for explain");
    add_connection_options(show, *options);
    auto trigger = std::make_shared<std::string>();
    auto* show_id = show->add_option("id", *ids, "Forge delivery id (or #seq)")->expected(1);
    auto* show_source = show->add_option("--source", *source, "Source, when ids could clash");
    show->add_option("--trigger", *trigger,
                     "Instead of a delivery id: the delivery that holds this trigger (the ids "
                     "replay prints), that trigger marked")
        ->excludes(show_id)
        ->excludes(show_source);
    auto* body_flag = show->add_flag(
        "--body", *show_body,
        "Write the stored body to stdout, byte for byte as received (for explain --body); "
        "exit 1 when it was not kept (store.keep_body: false)");
    auto* headers_flag = show->add_flag(
        "--headers", *show_headers,
        "Write the stored headers to stdout, one 'Name: value' per line (for explain "
        "--headers-file)");
    body_flag->excludes(headers_flag);
    if (auto* json_flag = show->get_option_no_throw("--json")) {
        body_flag->excludes(json_flag);
        headers_flag->excludes(json_flag);
    }
    auto* replay = deliveries->add_subcommand(
        "replay",
        "Re-queue triggers with a fresh retry budget: by id, or --state dead [--since] "
        "(--state delivered re-runs builds and needs --yes or a confirmation)");
    add_connection_options(replay, *options);
    replay->add_option("trigger", *ids, "Trigger ids");
    replay->add_option("--state", (*list)["state"],
                       "Bulk: triggers in this state (dead, delivered, pending, retrying)");
    replay->add_option("--since", (*list)["since"],
                       "Bulk: triggers whose state last changed at or after this time (UTC, as "
                       "for list) or age (24h); a trigger that dies again changes then");
    replay->add_option("--jenkins", (*list)["jenkins"], "Bulk: triggers for this Jenkins only");
    replay->add_option("--limit", (*list)["limit"], "Bulk: at most this many (default 1000)");
    replay->add_flag("-y,--yes", *yes,
                     "Confirm a bulk replay of delivered triggers (their builds run again)");
    auto replay_dry_run = std::make_shared<bool>(false);
    replay->add_flag("--dry-run", *replay_dry_run,
                     "Bulk: print the triggers it would re-queue now; re-queue nothing");
    auto* redeliver = deliveries->add_subcommand(
        "redeliver", "Run a stored delivery through the current rules again");
    add_connection_options(redeliver, *options);
    redeliver->add_option("id", *ids, "Forge delivery id (or #seq)")->required()->expected(1);
    redeliver->add_option("--source", *source, "Source, when ids could clash");
    auto dry_run = std::make_shared<bool>(false);
    redeliver->add_flag("--dry-run", *dry_run,
                        "Print what the current rules would queue (rule, Jenkins, job, "
                        "parameters); queue nothing");
    auto only_rule = std::make_shared<std::string>();
    redeliver->add_option("--rule", *only_rule,
                          "Queue only this rule's triggers (the fixed one): the other rules' "
                          "builds of this delivery do not run again");

    return [=]() -> int {
        Endpoint ep;
        if (!(*status || *health || *reload || *ls || *show || *replay || *redeliver)) return -1;
        if (*health) {
            // Probes need no token: never fail for want of one.
            options->want_token = false;
            if (!resolve_endpoint(*options, ep, std::cerr)) return 2;
            ep.token.clear();
            const auto r = call(ep, "GET", *ready ? "/readyz" : "/healthz");
            if (r.status == 0) {
                std::cerr << "hookrelay: " << r.error << '\n';
                return 2;
            }
            std::cout << r.status << ' ' << r.body << (r.body.ends_with('\n') ? "" : "\n");
            return r.status == 200 ? 0 : 1;
        }
        if (!resolve_endpoint(*options, ep, std::cerr)) return 2;
        const auto& o = *options;
        if (*status) return present(call(ep, "GET", "/api/v1/status"), o, print_status);
        if (*reload) {
            const auto r = call(ep, "POST", "/api/v1/reload");
            if (r.status == 422 && !o.json) {
                // A config with errors: one per line, as `check` prints them.
                const auto errors = answer_field(r.body, "errors");
                if (errors && errors->is_array()) {
                    for (const auto& e : errors->as_array()) {
                        std::cerr << (e.is_string() ? std::string(e.get_string())
                                                    : json::serialize(e))
                                  << '\n';
                    }
                    std::cerr << "hookrelay: reload refused: " << errors->as_array().size()
                              << (errors->as_array().size() == 1 ? " error" : " errors")
                              << "; the running configuration stays\n";
                    return 1;
                }
            }
            return present(r, o, [](const json::value& v) {
                std::cout << "reloaded\n";
                const auto* o = v.if_object();
                const auto* keys = o ? o->if_contains("restart_needed") : nullptr;
                if (keys && keys->is_array() && !keys->as_array().empty()) {
                    // ", " between them: a key may hold a space ("server.tls (on/off)").
                    std::cout << "these changes take effect only after a restart: ";
                    const char* between = "";
                    bool priority = false;
                    for (const auto& k : keys->as_array()) {
                        if (!k.is_string()) continue;
                        std::cout << between << k.as_string().c_str();
                        between = ", ";
                        priority = priority || k.as_string() == "hookrelay-store's priority";
                    }
                    std::cout << '\n';
                    if (priority) {
                        // Read alone, it looks as if the rules that moved it waited too.
                        std::cout << "(the new rules and sources apply already; only the store "
                                     "thread's priority waits: the daemon's log says why)\n";
                    }
                }
            });
        }
        auto query = [&](std::initializer_list<const char*> keys) {
            std::string q;
            for (const char* k : keys) {
                const auto& v = (*list)[k];
                if (v.empty()) continue;
                q += (q.empty() ? "?" : "&") + std::string(k) + "=" + encode(v);
            }
            return q;
        };
        if (*ls) {
            return present(
                list_deliveries(ep,
                                query({"source", "state", "outcome", "since", "repository", "ref"}),
                                (*list)["limit"], (*list)["cursor"]),
                o, print_deliveries);
        }
        if (*show && ids->empty()) {
            if (trigger->empty()) {
                std::cerr << "name a delivery id (or #seq), or --trigger ID\n";
                return 2;
            }
            if (!*show_body && !*show_headers) {
                return present(call(ep, "GET", "/api/v1/triggers/" + encode(*trigger)), o,
                               print_delivery);
            }
            // The body or headers of the trigger's delivery: found by its #seq.
            const auto r = call(ep, "GET", "/api/v1/triggers/" + encode(*trigger));
            if (r.status != 200) return present(r, o, [](const json::value&) {});
            const auto seq = answer_field(r.body, "seq");
            if (!seq || !seq->is_number()) return unexpected_answer(r.body);
            ids->push_back("#" + std::to_string(seq->to_number<std::int64_t>()));
        }
        const std::string src = source->empty() ? "" : "source=" + encode(*source);
        if (*show && *show_body) {
            const auto r = call(ep, "GET",
                                "/api/v1/deliveries/" + encode(ids->at(0)) + "/body" +
                                    (src.empty() ? "" : "?" + src));
            if (r.status != 200) return present(r, o, [](const json::value&) {});
            // The bytes as received: no newline added, nothing decoded.
            std::cout.write(r.body.data(), static_cast<std::streamsize>(r.body.size()));
            std::cout.flush();
            return std::cout ? 0 : 1;
        }
        if (*show) {
            return present(
                call(ep, "GET",
                     "/api/v1/deliveries/" + encode(ids->at(0)) + (src.empty() ? "" : "?" + src)),
                o, *show_headers ? print_headers : print_delivery);
        }
        if (*redeliver) {
            return present(call(ep, "POST",
                                "/api/v1/redeliver?delivery=" + encode(ids->at(0)) +
                                    (src.empty() ? "" : "&" + src) +
                                    (only_rule->empty() ? "" : "&rule=" + encode(*only_rule)) +
                                    (*dry_run ? "&dry_run=true" : "")),
                           o, *dry_run ? print_redeliver_dry_run : print_redelivered);
        }
        // replay
        if (ids->empty() && (*list)["state"].empty()) {
            std::cerr << "name trigger ids, or --state (e.g. --state dead --since 24h)\n";
            return 2;
        }
        if (!ids->empty() && *replay_dry_run) {
            std::cerr << "--dry-run is for a bulk replay (--state); a replay by id changes only "
                         "the triggers named\n";
            return 2;
        }
        if (!ids->empty()) {
            int rc = 0;
            for (const auto& id : *ids) {
                rc = std::max(
                    rc, present(call(ep, "POST", "/api/v1/triggers/" + encode(id) + "/replay"), o,
                                print_replayed));
            }
            return rc;
        }
        const auto bulk = "/api/v1/triggers/replay" + query({"state", "since", "jenkins", "limit"});
        if (*replay_dry_run) {
            return present(call(ep, "POST", bulk + "&dry_run=true"), o, print_replay_dry_run);
        }
        if ((*list)["state"] == "delivered" && !*yes) {
            // Count first (the daemon changes nothing on a dry run), then ask.
            const auto check = call(ep, "POST", bulk + "&dry_run=true");
            if (check.status != 200) return present(check, o, [](const json::value&) {});
            const auto matching = answer_field(check.body, "matching");
            if (!matching || !matching->is_array()) return unexpected_answer(check.body);
            const auto count = matching->as_array().size();
            if (count == 0) {
                std::cout << "no delivered triggers match; nothing re-queued\n";
                return 0;
            }
            if (!confirm_rerun(count, ::isatty(STDIN_FILENO) != 0, std::cin, std::cerr)) return 2;
        }
        return present(call(ep, "POST", bulk), o, print_replayed);
    };
}

}  // namespace hookrelay::app
