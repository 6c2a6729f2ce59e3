#include "fakes/fake_forge_api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace hookrelay::test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds k_idle_timeout{60};
constexpr std::chrono::seconds k_handshake_timeout{10};
constexpr std::size_t k_body_limit = 1024 * 1024;
constexpr std::size_t k_github_description_limit = 140;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

std::size_t code_points(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string text_of(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

struct Answer {
    int status = 201;
    std::string body;
    Headers headers;
};

Answer json_answer(int status, const json::value& body) {
    return Answer{status, json::serialize(body), {}};
}

Answer message_answer(int status, std::string_view message) {
    return json_answer(status, json::object{{"message", message}});
}

// One accepted connection, plain or TLS; set_down(true) closes its socket.
struct Conn {
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
};

// GitLab's open status of one project, sha and name: pending or running.
using OpenKey = std::tuple<std::string, std::string, std::string>;

}  // namespace

std::string PostedStatus::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return v;
    }
    return {};
}

struct FakeForgeApi::Impl : std::enable_shared_from_this<FakeForgeApi::Impl> {
    explicit Impl(Options opts) : options(std::move(opts)), acceptor(ioc) {}

    Options options;
    asio::io_context ioc;
    std::optional<ssl::context> tls;
    tcp::acceptor acceptor;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::uint16_t port = 0;               // fixed once the first listen() bound it
    unsigned generation = 0;              // io thread only: which accept loop is current
    std::list<std::weak_ptr<Conn>> live;  // io thread only

    mutable std::mutex mutex;  // guards everything below
    std::condition_variable changed;
    std::vector<PostedStatus> posted;
    std::map<OpenKey, std::string> open;  // GitLab: the open status' state
    int fail_count = 0;
    int fail_status = 0;
    std::string fail_retry_after;
    std::string fail_body;
    Headers fail_headers;
    std::size_t accepted = 0;
    long next_id = 1;

    std::string base_url() const {
        return std::string(options.tls ? "https" : "http") +
               "://127.0.0.1:" + std::to_string(port) + "/";
    }

    template <class F>
    void on_io(F f) {
        std::promise<void> done;
        auto future = done.get_future();
        asio::post(ioc, [&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        future.get();
    }

    void listen() {
        boost::system::error_code ec;
        const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            boost::system::error_code ignored;
            acceptor.close(ignored);
            throw std::runtime_error("FakeForgeApi: cannot listen on 127.0.0.1:" +
                                     std::to_string(port) + ": " + ec.message());
        }
        if (port == 0) port = acceptor.local_endpoint().port();
        asio::co_spawn(ioc, accept_loop(shared_from_this(), ++generation), asio::detached);
    }

    void close_all() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        ++generation;
        for (auto& weak : live) {
            if (auto conn = weak.lock()) {
                conn->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
                conn->lowest().socket().close(ignored);
            }
        }
        live.clear();
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self, unsigned generation) {
        while (self->generation == generation && self->acceptor.is_open()) {
            auto [ec, socket] = co_await self->acceptor.async_accept(k_use_tuple);
            if (self->generation != generation) break;
            if (ec) {
                if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) break;
                continue;
            }
            {
                std::lock_guard lock(self->mutex);
                ++self->accepted;
            }
            auto conn = std::make_shared<Conn>();
            if (self->tls) {
                conn->secure.emplace(beast::tcp_stream(std::move(socket)), *self->tls);
            } else {
                conn->plain.emplace(std::move(socket));
            }
            self->live.remove_if([](const auto& w) { return w.expired(); });
            self->live.push_back(conn);
            asio::co_spawn(self->ioc, session(self, std::move(conn)), asio::detached);
        }
    }

    static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Conn> conn) {
        if (conn->secure) {
            conn->lowest().expires_after(k_handshake_timeout);
            auto [ec] =
                co_await conn->secure->async_handshake(ssl::stream_base::server, k_use_tuple);
            if (ec) co_return;
            co_await serve(self, *conn->secure, conn->lowest());
        } else {
            co_await serve(self, *conn->plain, conn->lowest());
        }
        boost::system::error_code ignored;
        conn->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        conn->lowest().close();
    }

    template <class Stream>
    static asio::awaitable<void> serve(std::shared_ptr<Impl> self, Stream& stream,
                                       beast::tcp_stream& lowest) {
        beast::flat_buffer buffer;
        for (;;) {
            bhttp::request_parser<bhttp::string_body> parser;
            parser.body_limit(k_body_limit);
            lowest.expires_after(k_idle_timeout);
            auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, k_use_tuple);
            (void)n;
            if (ec) co_return;
            auto request = parser.release();
            const Answer answer = self->handle(request);
            bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(answer.status),
                                                    request.version()};
            res.set(bhttp::field::server, "fake-forge-api");
            res.set(bhttp::field::content_type, "application/json; charset=utf-8");
            for (const auto& [name, value] : answer.headers) res.insert(name, value);
            res.body() = answer.body;
            res.keep_alive(request.keep_alive());
            res.prepare_payload();
            lowest.expires_after(k_idle_timeout);
            auto [wec, wn] = co_await bhttp::async_write(stream, res, k_use_tuple);
            (void)wn;
            if (wec || !res.keep_alive()) co_return;
        }
    }

    // Routes, answers and records one request (io thread).
    Answer handle(const bhttp::request<bhttp::string_body>& request) {
        PostedStatus post;
        post.target = std::string(request.target());
        post.at = std::chrono::steady_clock::now();
        for (const auto& field : request) {
            post.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        const std::string_view target = request.target();
        const auto segments = split_path(target.substr(0, target.find('?')));
        const auto n = segments.size();
        // .../repos/{owner}/{repo}/statuses/{sha} or .../projects/{id}/statuses/{sha}
        if (request.method() == bhttp::verb::post && n >= 5 && segments[n - 5] == "repos" &&
            segments[n - 2] == "statuses") {
            post.forge = "github";
            post.repository = decode(segments[n - 4]) + "/" + decode(segments[n - 3]);
            post.sha = decode(segments[n - 1]);
        } else if (request.method() == bhttp::verb::post && n >= 4 &&
                   segments[n - 4] == "projects" && segments[n - 2] == "statuses") {
            post.forge = "gitlab";
            post.repository = decode(segments[n - 3]);
            post.sha = decode(segments[n - 1]);
        } else {
            return message_answer(404, "Not Found");
        }

        std::unique_lock lock(mutex);
        const Answer answer =
            post.forge == "github" ? github(request, post) : gitlab(request, post);
        post.status = answer.status;
        post.answer = answer.body;
        posted.push_back(std::move(post));
        lock.unlock();
        changed.notify_all();
        return answer;
    }

    bool authorized(const bhttp::request<bhttp::string_body>& request, bool gitlab) const {
        const auto token = options.token;
        if (gitlab) {
            const auto it = request.find("PRIVATE-TOKEN");
            if (it != request.end() && it->value() == token) return true;
        }
        const auto it = request.find(bhttp::field::authorization);
        if (it == request.end()) return false;
        const std::string_view value = it->value();
        return value == "Bearer " + token || (!gitlab && value == "token " + token);
    }

    // A scripted failure, if one is due (mutex held).
    std::optional<Answer> scripted_failure() {
        if (fail_count <= 0) return std::nullopt;
        --fail_count;
        Answer a;
        a.status = fail_status;
        a.body = fail_body;
        if (a.body.empty()) {
            a.body = json::serialize(json::object{
                {"message", bhttp::obsolete_reason(static_cast<bhttp::status>(fail_status))}});
        }
        if (!fail_retry_after.empty()) a.headers.emplace_back("Retry-After", fail_retry_after);
        for (const auto& h : fail_headers) a.headers.push_back(h);
        return a;
    }

    // The request's JSON object, or nullopt.
    static std::optional<json::object> body_of(const bhttp::request<bhttp::string_body>& request) {
        boost::system::error_code ec;
        auto value = json::parse(request.body(), ec);
        if (ec || !value.is_object()) return std::nullopt;
        return std::move(value.as_object());
    }

    Answer github(const bhttp::request<bhttp::string_body>& request, PostedStatus& post) {
        if (!authorized(request, false)) {
            return json_answer(401,
                               json::object{{"message", "Bad credentials"},
                                            {"documentation_url", "https://docs.github.com/rest"}});
        }
        if (auto failure = scripted_failure()) return *failure;
        auto body = body_of(request);
        if (!body) return message_answer(400, "Problems parsing JSON");
        post.state = text_of(*body, "state");
        post.context = body->contains("context") ? text_of(*body, "context") : "default";
        post.description = text_of(*body, "description");
        post.target_url = text_of(*body, "target_url");
        auto invalid = [](std::string field, std::string code, std::string message) {
            json::object error{{"resource", "Status"}, {"field", field}, {"code", code}};
            if (!message.empty()) error["message"] = message;
            return json_answer(422, json::object{{"message", "Validation Failed"},
                                                 {"errors", json::array{error}}});
        };
        static const std::vector<std::string> k_states = {"error", "failure", "pending", "success"};
        if (std::find(k_states.begin(), k_states.end(), post.state) == k_states.end()) {
            return invalid("state", "invalid", "");
        }
        if (code_points(post.description) > k_github_description_limit) {
            return invalid("description", "custom",
                           "description is too long (maximum is 140 characters)");
        }
        return json_answer(201, json::object{{"id", next_id++},
                                             {"state", post.state},
                                             {"description", post.description},
                                             {"target_url", post.target_url},
                                             {"context", post.context}});
    }

    Answer gitlab(const bhttp::request<bhttp::string_body>& request, PostedStatus& post) {
        if (!authorized(request, true)) return message_answer(401, "401 Unauthorized");
        if (auto failure = scripted_failure()) return *failure;
        auto body = body_of(request);
        if (!body) return message_answer(400, "400 Bad request");
        post.state = text_of(*body, "state");
        post.context = text_of(*body, "name");
        if (post.context.empty()) post.context = text_of(*body, "context");
        if (post.context.empty()) post.context = "default";
        post.description = text_of(*body, "description");
        post.target_url = text_of(*body, "target_url");

        // The job the post updates: the open one of this project, sha and name, else a new one
        // ("created"). Then the state machine's event for the wanted state.
        const OpenKey key{post.repository, post.sha, post.context};
        const auto it = open.find(key);
        const std::string from = it == open.end() ? "created" : it->second;
        std::string event;
        bool allowed = false;
        const auto& to = post.state;
        if (to == "pending") {
            event = "enqueue";
            allowed = from == "created";
        } else if (to == "running") {
            event = "run";  // after a silent enqueue (created → pending)
            allowed = from == "created" || from == "pending";
        } else if (to == "success") {
            event = "success";
            allowed = true;
        } else if (to == "failed") {
            event = "drop";
            allowed = true;
        } else if (to == "canceled") {
            event = "cancel";
            allowed = true;
        } else if (to == "skipped") {
            event = "skip";
            allowed = from == "created";
        } else {
            return json_answer(400, json::object{{"error", "state does not have a valid value"}});
        }
        if (!allowed) {
            return message_answer(400, "Cannot transition status via :" + event + " from :" + from);
        }
        if (to == "pending" || to == "running") {
            open[key] = to;
        } else if (it != open.end()) {
            open.erase(it);
        }
        return json_answer(201, json::object{{"id", next_id++},
                                             {"sha", post.sha},
                                             {"status", post.state},
                                             {"name", post.context},
                                             {"description", post.description},
                                             {"target_url", post.target_url}});
    }
};

FakeForgeApi::FakeForgeApi() : FakeForgeApi(Options{}) {}

FakeForgeApi::FakeForgeApi(Options options) : impl_(std::make_shared<Impl>(std::move(options))) {
    auto& impl = *impl_;
    if (impl.options.tls) {
        impl.tls.emplace(ssl::context::tls_server);
        boost::system::error_code ec;
        impl.tls->use_certificate_chain_file(impl.options.cert_file, ec);
        if (!ec) impl.tls->use_private_key_file(impl.options.key_file, ssl::context::pem, ec);
        if (ec) throw std::runtime_error("FakeForgeApi: cannot load certificate: " + ec.message());
    }
    impl.port = impl.options.port;
    impl.listen();
    impl.work.emplace(impl.ioc.get_executor());
    impl.thread = std::thread([&impl] { impl.ioc.run(); });
}

FakeForgeApi::~FakeForgeApi() {
    auto& impl = *impl_;
    // Closing every socket lets each coroutine finish (they hold the Impl), so run() returns.
    impl.on_io([&impl] {
        impl.close_all();
        impl.work.reset();
    });
    impl.thread.join();
}

std::uint16_t FakeForgeApi::port() const {
    return impl_->port;
}

std::string FakeForgeApi::url() const {
    return impl_->base_url();
}

void FakeForgeApi::fail_next(int count, int status, std::string retry_after, std::string body,
                             std::vector<std::pair<std::string, std::string>> headers) {
    std::lock_guard lock(impl_->mutex);
    impl_->fail_count = count;
    impl_->fail_status = status;
    impl_->fail_retry_after = std::move(retry_after);
    impl_->fail_body = std::move(body);
    impl_->fail_headers = std::move(headers);
}

void FakeForgeApi::set_down(bool down) {
    auto& impl = *impl_;
    impl.on_io([&impl, down] {
        if (down) {
            impl.close_all();
        } else if (!impl.acceptor.is_open()) {
            impl.listen();
        }
    });
}

void FakeForgeApi::set_token(std::string token) {
    std::lock_guard lock(impl_->mutex);
    impl_->options.token = std::move(token);
}

std::vector<PostedStatus> FakeForgeApi::posts() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->posted;
}

std::vector<PostedStatus> FakeForgeApi::statuses() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<PostedStatus> out;
    for (const auto& p : impl_->posted) {
        if (p.status >= 200 && p.status < 300) out.push_back(p);
    }
    return out;
}

bool FakeForgeApi::wait_for_statuses(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] {
        return static_cast<std::size_t>(std::count_if(
                   impl_->posted.begin(), impl_->posted.end(),
                   [](const auto& p) { return p.status >= 200 && p.status < 300; })) >= n;
    });
}

bool FakeForgeApi::wait_for_posts(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, deadline, [&] { return impl_->posted.size() >= n; });
}

std::size_t FakeForgeApi::connections_accepted() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->accepted;
}

}  // namespace hookrelay::test
