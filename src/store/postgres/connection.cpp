#include "store/postgres/connection.hpp"

#include <libpq-fe.h>
#include <sys/socket.h>

#include <cerrno>

#include "util/resolve.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>

namespace hookrelay::store::postgres {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Steady = std::chrono::steady_clock;

constexpr auto k_use_tuple = asio::as_tuple(asio::use_awaitable);

// --- Secrets in the connection string --------------------------------------------------------

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

// The password as written in `url`, found without libpq (whose parse error may quote it): the
// userinfo of a URI and its `password` query parameter, or a key=value string's `password`.
std::vector<std::string> written_secrets(std::string_view url) {
    std::vector<std::string> out;
    const auto add = [&](std::string_view raw) {
        if (raw.empty()) return;
        out.emplace_back(raw);
        std::string decoded = percent_decode(raw);
        if (decoded != raw) out.push_back(std::move(decoded));
    };
    for (std::string_view scheme : {"postgresql://", "postgres://"}) {
        if (url.substr(0, scheme.size()) != scheme) continue;
        const std::string_view rest = url.substr(scheme.size());
        const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
        if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
            const std::string_view userinfo = authority.substr(0, at);
            if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
                add(userinfo.substr(colon + 1));
            }
        } else if (const auto first_at = rest.find('@');
                   first_at != std::string_view::npos && first_at < rest.find('?')) {
            // A password holding a '/' that was not percent-encoded: libpq then reads its parts
            // as the port and the database name, and its messages quote them. Each part is
            // hidden.
            const std::string_view userinfo = rest.substr(0, first_at);
            const auto colon = userinfo.find(':');
            if (colon != std::string_view::npos && userinfo.find('/', colon) != std::string::npos) {
                std::string_view password = userinfo.substr(colon + 1);
                add(password);
                while (!password.empty()) {
                    const auto slash = password.find('/');
                    add(password.substr(0, slash));
                    if (slash == std::string_view::npos) break;
                    password.remove_prefix(slash + 1);
                }
            }
        }
        if (const auto q = rest.find('?'); q != std::string_view::npos) {
            std::string_view query = rest.substr(q + 1);
            while (!query.empty()) {
                const auto amp = query.find('&');
                const std::string_view pair = query.substr(0, amp);
                const auto eq = pair.find('=');
                if (eq != std::string_view::npos &&
                    percent_decode(pair.substr(0, eq)) == "password") {
                    add(pair.substr(eq + 1));
                }
                if (amp == std::string_view::npos) break;
                query.remove_prefix(amp + 1);
            }
        }
        return out;
    }
    // key = value pairs; values are bare words or single-quoted with backslash escapes.
    std::size_t i = 0;
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (i < url.size()) {
        while (i < url.size() && is_space(url[i])) ++i;
        const std::size_t key_start = i;
        while (i < url.size() && url[i] != '=' && !is_space(url[i])) ++i;
        const std::string_view key = url.substr(key_start, i - key_start);
        while (i < url.size() && is_space(url[i])) ++i;
        if (i >= url.size() || url[i] != '=') {
            ++i;
            continue;
        }
        ++i;
        while (i < url.size() && is_space(url[i])) ++i;
        std::string value;
        const std::size_t value_start = i;
        if (i < url.size() && url[i] == '\'') {
            ++i;
            while (i < url.size() && url[i] != '\'') {
                if (url[i] == '\\' && i + 1 < url.size()) ++i;
                value += url[i++];
            }
            ++i;
        } else {
            while (i < url.size() && !is_space(url[i])) value += url[i++];
        }
        if (key == "password") {
            add(value);
            add(url.substr(value_start, std::min(i, url.size()) - value_start));
        }
    }
    return out;
}

// --- Binary encoding ------------------------------------------------------------------------

void put_be32(std::string& out, std::uint32_t v) {
    const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
    out.append(bytes, 4);
}

void put_be64(std::string& out, std::uint64_t v) {
    put_be32(out, static_cast<std::uint32_t>(v >> 32));
    put_be32(out, static_cast<std::uint32_t>(v));
}

std::uint64_t get_be(const char* data, int length) {
    std::uint64_t v = 0;
    for (int i = 0; i < length; ++i) v = (v << 8) | static_cast<unsigned char>(data[i]);
    return v;
}

// A one-dimensional binary array (array_send): ndim, has-null flag, element type, then the
// dimension and lower bound, then each element as length + bytes.
std::string encode_array(unsigned element_type, std::size_t count,
                         const std::function<void(std::string&, std::size_t)>& element) {
    std::string out;
    if (count == 0) {
        put_be32(out, 0);
        put_be32(out, 0);
        put_be32(out, element_type);
        return out;
    }
    put_be32(out, 1);
    put_be32(out, 0);
    put_be32(out, element_type);
    put_be32(out, static_cast<std::uint32_t>(count));
    put_be32(out, 1);
    for (std::size_t i = 0; i < count; ++i) element(out, i);
    return out;
}

std::string first_line(std::string_view text) {
    while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.remove_prefix(1);
    std::string_view line = text.substr(0, text.find('\n'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    return std::string(line);
}

// ERROR/FATAL messages of libpq start with the severity; the primary message alone reads better
// after our own prefix.
std::string result_message(const PGresult* result) {
    if (const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) return primary;
    return PQresultErrorMessage(result);
}

}  // namespace

errc classify_sqlstate(std::string_view s) noexcept {
    if (s.size() != 5) return errc::store_unavailable;
    if (s == "57014") return errc::store_timeout;  // query_canceled: statement_timeout
    if (s == "53100") return errc::store_full;     // disk_full
    if (s == "40001" || s == "40P01" || s == "55P03" || s.substr(0, 2) == "53") {
        return errc::store_busy;  // serialization, deadlock, lock_not_available, resources
    }
    // 08: connection exceptions; 57P0x: shutdown, crash, cannot connect now; 25006: read-only
    // (a standby after failover); the rest are not worth retrying sooner, but are not the
    // caller's fault either.
    return errc::store_unavailable;
}

// --- ConnInfo ---------------------------------------------------------------------------------

namespace {

// A libpq list ("a,b"): its entries, empty ones kept (an empty host is the default socket).
std::vector<std::string> split_list(std::string_view list) {
    std::vector<std::string> entries;
    if (list.empty()) return entries;
    for (;;) {
        const auto comma = list.find(',');
        entries.emplace_back(list.substr(0, comma));
        if (comma == std::string_view::npos) return entries;
        list.remove_prefix(comma + 1);
    }
}

// libpq's port when none is given: PGPORT, else the one it was built with.
std::string default_port() {
    std::string port = "5432";
    if (PQconninfoOption* defaults = PQconndefaults()) {
        for (const PQconninfoOption* o = defaults; o->keyword; ++o) {
            if (std::string_view(o->keyword) == "port" && o->val && *o->val) port = o->val;
        }
        PQconninfoFree(defaults);
    }
    return port;
}

// What libpq would look up: not a socket directory ('/' or, for the abstract namespace, '@'),
// not the default (empty), not an IPv4 or IPv6 address.
bool is_host_name(const std::string& host) {
    if (host.empty() || host.front() == '/' || host.front() == '@') return false;
    boost::system::error_code ec;
    (void)asio::ip::make_address(host, ec);
    return static_cast<bool>(ec);
}

}  // namespace

std::shared_ptr<const ConnInfo> ConnInfo::parse(std::string_view url, std::string* why,
                                                Lookup lookup) {
    auto info = std::make_shared<ConnInfo>();
    info->lookup_ = std::move(lookup);
    info->url_ = std::string(url);
    info->secrets_ = written_secrets(url);
    const auto sort_secrets = [&] {
        auto& s = info->secrets_;
        std::erase_if(s, [](const std::string& v) { return v.empty(); });
        std::sort(s.begin(), s.end(),
                  [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
        s.erase(std::unique(s.begin(), s.end()), s.end());
    };
    sort_secrets();
    if (url.empty()) {
        if (why) *why = "store.postgres.url is empty";
        return nullptr;
    }
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(info->url_.c_str(), &error);
    if (!options) {
        const std::string reason = error ? error : "out of memory";
        if (error) PQfreemem(error);
        if (why) {
            *why = "store.postgres.url is not a valid PostgreSQL connection string: " +
                   info->scrub(reason);
        }
        return nullptr;
    }
    // Described in this order, whatever order the URL gives them in.
    constexpr std::array<std::string_view, 5> k_described = {"host", "hostaddr", "port", "dbname",
                                                             "user"};
    std::array<std::string, k_described.size()> described;
    std::string host, hostaddr, port, service;
    for (const PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val || !*o->val) continue;
        const std::string_view key = o->keyword;
        if (key == "host") host = o->val;
        if (key == "hostaddr") hostaddr = o->val;
        if (key == "port") port = o->val;
        if (key == "service") service = o->val;
        if (key == "password") {
            info->secrets_.emplace_back(o->val);
        } else if (const auto at = std::find(k_described.begin(), k_described.end(), key);
                   at != k_described.end()) {
            described[static_cast<std::size_t>(at - k_described.begin())] = o->val;
        }
    }
    PQconninfoFree(options);
    std::string description;
    for (std::size_t i = 0; i < k_described.size(); ++i) {
        if (described[i].empty()) continue;
        if (!description.empty()) description += ' ';
        description += std::string(k_described[i]) + '=' + described[i];
    }
    // A port list must match the host list (libpq refuses it otherwise, and says so at connect).
    // A hostaddr given is used as it is, in the URL or from the environment, and so is whatever
    // a service file may say.
    const auto hosts = split_list(host);
    const auto ports = split_list(port);
    const auto set = [](const char* name) {
        const char* value = std::getenv(name);
        return value && *value;
    };
    // Each entry's port as libpq would take it: one for all; else its own from a list (an empty
    // one is libpq's built-in 5432, as a URI of several hosts without ports gives); else, with
    // no port at all, PGPORT or 5432 (a PGPORT list is left to libpq).
    const std::string for_all = ports.size() == 1 ? ports[0] : ports.empty() ? default_port() : "";
    if (hostaddr.empty() && service.empty() && !set("PGHOSTADDR") && !set("PGSERVICE") &&
        (ports.size() <= 1 || ports.size() == hosts.size()) &&
        for_all.find(',') == std::string::npos) {
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            info->hosts_.push_back(
                {hosts[i], ports.size() > 1 ? ports[i] : for_all, is_host_name(hosts[i])});
        }
        if (std::none_of(info->hosts_.begin(), info->hosts_.end(),
                         [](const Host& h) { return h.name; })) {
            info->hosts_.clear();
        }
    }
    sort_secrets();
    // A host or database name that happens to contain the password is shown as *** too.
    info->description_ = info->scrub(description.empty() ? "(libpq defaults)" : description);
    return info;
}

std::string ConnInfo::scrub(std::string_view text) const {
    const auto word = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    };
    std::string out(text);
    for (const std::string& secret : secrets_) {
        const bool whole_word = secret.size() < k_whole_word_below;
        // Where a word must begin or end: only at an end of the secret that is a word character
        // itself ("!!" is not a word, and is hidden wherever it stands).
        const bool starts_word = whole_word && word(secret.front());
        const bool ends_word = whole_word && word(secret.back());
        std::size_t at = 0;
        while ((at = out.find(secret, at)) != std::string::npos) {
            const std::size_t end = at + secret.size();
            if ((starts_word && at > 0 && word(out[at - 1])) ||
                (ends_word && end < out.size() && word(out[end]))) {
                ++at;
                continue;
            }
            out.replace(at, secret.size(), "***");
            at += 3;
        }
    }
    return first_line(out);
}

// --- Params -----------------------------------------------------------------------------------

Params& Params::add(unsigned type, std::string_view value) {
    return add_owned(type, std::string(value));
}

Params& Params::add_owned(unsigned type, std::string value) {
    types_.push_back(type);
    Value v;
    v.data = std::move(value);
    values_.push_back(std::move(v));
    return *this;
}

Params& Params::bytes_ref(std::string_view value) {
    types_.push_back(oid::bytea);
    Value v;
    v.owned = false;
    v.view = value;
    values_.push_back(std::move(v));
    return *this;
}

Params& Params::int8(std::int64_t value) {
    std::string bytes;
    put_be64(bytes, static_cast<std::uint64_t>(value));
    return add_owned(oid::int8, std::move(bytes));
}

Params& Params::int4(std::int32_t value) {
    std::string bytes;
    put_be32(bytes, static_cast<std::uint32_t>(value));
    return add_owned(oid::int4, std::move(bytes));
}

Params& Params::boolean(bool value) {
    return add_owned(oid::boolean, std::string(1, value ? '\1' : '\0'));
}

Params& Params::null(unsigned type) {
    types_.push_back(type);
    Value v;
    v.null = true;
    values_.push_back(std::move(v));
    return *this;
}

Params& Params::text_array(const std::vector<std::string>& values) {
    return add_owned(oid::text_array,
                     encode_array(oid::text, values.size(), [&](std::string& out, std::size_t i) {
                         put_be32(out, static_cast<std::uint32_t>(values[i].size()));
                         out += values[i];
                     }));
}

Params& Params::bytea_array(const std::vector<std::string>& values) {
    return add_owned(oid::bytea_array,
                     encode_array(oid::bytea, values.size(), [&](std::string& out, std::size_t i) {
                         put_be32(out, static_cast<std::uint32_t>(values[i].size()));
                         out += values[i];
                     }));
}

Params& Params::int8_array(const std::vector<std::int64_t>& values) {
    return add_owned(oid::int8_array,
                     encode_array(oid::int8, values.size(), [&](std::string& out, std::size_t i) {
                         put_be32(out, 8);
                         put_be64(out, static_cast<std::uint64_t>(values[i]));
                     }));
}

void Params::prepare(std::vector<const char*>& values, std::vector<int>& lengths) const {
    values.clear();
    lengths.clear();
    for (const Value& v : values_) {
        if (v.null) {
            values.push_back(nullptr);
            lengths.push_back(0);
            continue;
        }
        const std::string_view bytes = v.owned ? std::string_view(v.data) : v.view;
        // A non-null pointer even for an empty value: NULL would mean SQL NULL.
        values.push_back(bytes.empty() ? "" : bytes.data());
        lengths.push_back(static_cast<int>(bytes.size()));
    }
}

// --- Rows -------------------------------------------------------------------------------------

void Rows::Clear::operator()(PGresult* result) const noexcept {
    PQclear(result);
}

Rows::Rows(PGresult* result) : result_(result) {}

int Rows::size() const noexcept {
    return result_ ? PQntuples(result_.get()) : 0;
}

std::int64_t Rows::affected() const {
    if (!result_) return 0;
    const char* text = PQcmdTuples(result_.get());
    return text && *text ? std::stoll(text) : 0;
}

bool Rows::is_null(int row, int column) const {
    if (!result_ || row >= size() || column >= PQnfields(result_.get())) {
        throw DbError(errc::store_unavailable, "no such row or column in a result");
    }
    return PQgetisnull(result_.get(), row, column) != 0;
}

namespace {
enum TypeClass : unsigned { k_integer = 1, k_bytes = 2, k_bool = 3 };

unsigned type_class(unsigned type) noexcept {
    switch (type) {
        case oid::int2:
        case oid::int4:
        case oid::int8:
        case oid::oid:
            return k_integer;
        case oid::text:
        case oid::bytea:
        case oid::varchar:
        case oid::name:
        case oid::bpchar:
            return k_bytes;
        case oid::boolean:
            return k_bool;
        default:
            return 0;
    }
}
}  // namespace

const char* Rows::cell(int row, int column, unsigned wanted, int& length) const {
    if (is_null(row, column)) {
        throw DbError(errc::store_unavailable,
                      "unexpected NULL in column " + std::to_string(column) + " of a result");
    }
    const unsigned type = PQftype(result_.get(), column);
    if (type_class(type) != wanted || PQfformat(result_.get(), column) != 1) {
        throw DbError(errc::store_unavailable, "column " + std::to_string(column) +
                                                   " of a result has type " + std::to_string(type) +
                                                   ", not the one read");
    }
    length = PQgetlength(result_.get(), row, column);
    return PQgetvalue(result_.get(), row, column);
}

std::int64_t Rows::int64(int row, int column) const {
    int length = 0;
    const char* data = cell(row, column, k_integer, length);
    const std::uint64_t raw = get_be(data, length);
    switch (length) {
        case 2:
            return static_cast<std::int16_t>(raw);
        case 4:
            return PQftype(result_.get(), column) == oid::oid ? static_cast<std::int64_t>(raw)
                                                              : static_cast<std::int32_t>(raw);
        case 8:
            return static_cast<std::int64_t>(raw);
        default:
            throw DbError(errc::store_unavailable,
                          "an integer of " + std::to_string(length) + " bytes in a result");
    }
}

std::string Rows::text(int row, int column) const {
    int length = 0;
    const char* data = cell(row, column, k_bytes, length);
    return std::string(data, static_cast<std::size_t>(length));
}

bool Rows::boolean(int row, int column) const {
    int length = 0;
    const char* data = cell(row, column, k_bool, length);
    return length == 1 && data[0] != 0;
}

// --- Connection -------------------------------------------------------------------------------

Connection::Connection(asio::any_io_executor executor, std::shared_ptr<const ConnInfo> info,
                       Timeouts timeouts, std::string application_name)
    : executor_(executor),
      info_(std::move(info)),
      timeouts_(timeouts),
      application_name_(std::move(application_name)),
      socket_(executor),
      timer_(executor) {}

Connection::~Connection() {
    close();
}

void Connection::close() {
    if (socket_.is_open()) {
        boost::system::error_code ignored;
        socket_.cancel(ignored);
        // libpq owns the descriptor: take it back from Asio without closing it.
        (void)socket_.release();
    }
    socket_fd_ = -1;
    if (conn_) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    prepared_.clear();
    broken_ = true;
}

void Connection::cancel() {
    cancelled_ = true;
    boost::system::error_code ignored;
    if (socket_.is_open()) socket_.cancel(ignored);
    timer_.cancel();
}

bool Connection::idle() const noexcept {
    return conn_ && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

bool Connection::alive() {
    if (broken_ || !conn_ || PQstatus(conn_) != CONNECTION_OK) return false;
    if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) {
        broken_ = true;
        forget_closed_socket();
        return false;
    }
    (void)PQisBusy(conn_);  // parses what arrived: a server's goodbye ends up as a notice
    // A server that ends the session (shutdown, restart, pg_terminate_backend) says goodbye and
    // closes; libpq may have read the goodbye without noticing the end of the stream yet. A
    // FATAL notice, or the end of the stream when peeking, means this connection is gone.
    char byte = 0;
    const ssize_t n = ::recv(PQsocket(conn_), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (goodbye_ || n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        broken_ = true;
        return false;
    }
    return idle();
}

void Connection::sync_socket(bool anew) {
    const int fd = conn_ ? PQsocket(conn_) : -1;
    if (fd == socket_fd_ && !anew) return;
    if (socket_.is_open()) (void)socket_.release();
    socket_fd_ = -1;
    if (fd < 0) return;
    boost::system::error_code ec;
    socket_.assign(fd, ec);
    if (ec) fail_connection("cannot watch the connection's socket: " + ec.message());
    socket_fd_ = fd;
}

Connection::Deadline Connection::statement_deadline(std::chrono::milliseconds timeout) const {
    return Steady::now() + (timeout.count() > 0 ? timeout : timeouts_.statement) + timeouts_.margin;
}

void Connection::forget_closed_socket() noexcept {
    // libpq closes its socket when the connection fails. Stop watching that descriptor number
    // at once, before any other connection of ours could be given the same number.
    const int fd = conn_ ? PQsocket(conn_) : -1;
    if (fd != socket_fd_ && socket_.is_open()) {
        (void)socket_.release();
        socket_fd_ = -1;
    }
}

void Connection::fail_connection(std::string_view what) {
    broken_ = true;
    forget_closed_socket();
    std::string message(what);
    if (conn_) {
        const std::string detail = first_line(PQerrorMessage(conn_));
        if (!detail.empty()) message += ": " + detail;
    }
    throw DbError(errc::store_unavailable, info_->scrub(message));
}

void Connection::fail_statement(const std::string& message, const std::string& sqlstate) {
    // An error result with the connection gone (the server shut down or crashed mid-statement).
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        broken_ = true;
        forget_closed_socket();
    }
    throw DbError(classify_sqlstate(sqlstate), info_->scrub(message), sqlstate);
}

asio::awaitable<void> Connection::wait(Direction direction, Deadline deadline) {
    if (cancelled_) throw DbError(errc::store_closed, "the store is closing");
    timer_.expires_at(deadline);
    std::size_t which = 0;
    boost::system::error_code ec;
    switch (direction) {
        case Direction::read: {
            auto r = co_await (
                socket_.async_wait(asio::posix::descriptor_base::wait_read, k_use_tuple) ||
                timer_.async_wait(k_use_tuple));
            which = r.index();
            if (which == 0) ec = std::get<0>(std::get<0>(r));
            break;
        }
        case Direction::write: {
            auto r = co_await (
                socket_.async_wait(asio::posix::descriptor_base::wait_write, k_use_tuple) ||
                timer_.async_wait(k_use_tuple));
            which = r.index();
            if (which == 0) ec = std::get<0>(std::get<0>(r));
            break;
        }
        case Direction::read_or_write: {
            auto r = co_await (
                socket_.async_wait(asio::posix::descriptor_base::wait_read, k_use_tuple) ||
                socket_.async_wait(asio::posix::descriptor_base::wait_write, k_use_tuple) ||
                timer_.async_wait(k_use_tuple));
            which = r.index() == 2 ? 1 : 0;
            if (r.index() == 0) ec = std::get<0>(std::get<0>(r));
            if (r.index() == 1) ec = std::get<0>(std::get<1>(r));
            break;
        }
    }
    if (cancelled_) throw DbError(errc::store_closed, "the store is closing");
    if (which == 1) {
        broken_ = true;
        throw DbError(errc::store_timeout, "PostgreSQL did not answer in time");
    }
    if (ec) fail_connection("waiting for the connection: " + ec.message());
}

namespace {

// A name's addresses by `timer`'s expiry, from `lookup` (the tests', as text) or getaddrinfo on a
// thread of its own; or why there are none.
asio::awaitable<Resolved> look_up(asio::any_io_executor executor, const Lookup& lookup,
                                  const std::string& host, asio::steady_timer& timer) {
    if (!lookup) co_return co_await resolve_within(executor, host, "", timer);
    co_return co_await await_lookup(
        executor,
        [&](auto done) {
            lookup(host,
                   [done = std::move(done)](std::vector<std::string> addresses, std::string error) {
                       Resolved resolved;
                       resolved.error = std::move(error);
                       for (const auto& text : addresses) {
                           boost::system::error_code ec;
                           const auto address = asio::ip::make_address(text, ec);
                           if (!ec) resolved.endpoints.emplace_back(address, 0);
                       }
                       if (resolved.endpoints.empty() && resolved.error.empty()) {
                           resolved.error = "no addresses";
                       }
                       done(std::move(resolved));
                   });
        },
        timer);
}

}  // namespace

asio::awaitable<Connection::Targets> Connection::look_up_hosts(Deadline deadline) {
    Targets targets;
    std::size_t entries = 0;
    const auto add = [&](const std::string& host, const std::string& address,
                         const std::string& port) {
        if (entries++ > 0) {
            targets.host += ',';
            targets.hostaddr += ',';
            targets.port += ',';
        }
        targets.host += host;
        targets.hostaddr += address;
        targets.port += port;
    };
    std::string errors;
    for (const auto& h : info_->hosts_to_look_up()) {
        if (!h.name) {
            add(h.host, "", h.port);
            continue;
        }
        // On the connection's timer, which cancel() (the store closing) cancels.
        timer_.expires_at(deadline);
        auto found = co_await look_up(executor_, info_->lookup(), h.host, timer_);
        if (cancelled_) throw DbError(errc::store_closed, "the store is closing");
        if (found.failed()) {
            const std::string why =
                found.timed_out
                    ? "no answer within " + std::to_string(timeouts_.connect.count()) + " ms"
                    : found.error;
            errors += (errors.empty() ? "" : "; ") + ("look up " + h.host + ": " + why);
            continue;
        }
        std::vector<std::string> seen;
        for (const auto& endpoint : found.endpoints) {
            auto address = endpoint.address().to_string();
            if (std::find(seen.begin(), seen.end(), address) != seen.end()) continue;
            seen.push_back(address);
            add(h.host, address, h.port);
        }
    }
    if (entries == 0) {
        broken_ = true;
        throw DbError(errc::store_unavailable,
                      info_->scrub("cannot connect to PostgreSQL: " + errors));
    }
    co_return targets;
}

asio::awaitable<void> Connection::connect() {
    close();
    broken_ = false;
    cancelled_ = false;
    goodbye_ = false;
    const Deadline deadline = Steady::now() + timeouts_.connect;
    // expand_dbname: the URL (or key=value string) in dbname is expanded, and the keywords after
    // it override what it says; the application name is a fallback, so one given in the URL wins.
    std::vector<const char*> keywords{"dbname"};
    std::vector<const char*> values{info_->url().c_str()};
    Targets targets;
    if (!info_->hosts_to_look_up().empty()) {
        // A port for every entry: libpq wants as many as hosts, or one.
        targets = co_await look_up_hosts(deadline);
        keywords.insert(keywords.end(), {"host", "hostaddr", "port"});
        values.insert(values.end(),
                      {targets.host.c_str(), targets.hostaddr.c_str(), targets.port.c_str()});
    }
    keywords.insert(keywords.end(), {"fallback_application_name", nullptr});
    values.insert(values.end(), {application_name_.c_str(), nullptr});
    conn_ = PQconnectStartParams(keywords.data(), values.data(), 1);
    if (!conn_) throw DbError(errc::store_unavailable, "cannot start a PostgreSQL connection");
    if (PQstatus(conn_) == CONNECTION_BAD) fail_connection("cannot connect to PostgreSQL");
    // libpq prints notices on stderr by default; the store reports through on_error only. A
    // FATAL one is the server's goodbye to an idle connection (shutdown, restart,
    // pg_terminate_backend), sent before it closes the socket: this connection is done.
    PQsetNoticeReceiver(
        conn_,
        [](void* self, const PGresult* notice) {
            const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
            const std::string_view s = severity ? severity : "";
            if (s == "FATAL" || s == "PANIC") static_cast<Connection*>(self)->goodbye_ = true;
        },
        this);
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    for (;;) {
        if (poll == PGRES_POLLING_OK) break;
        if (poll == PGRES_POLLING_FAILED) fail_connection("cannot connect to PostgreSQL");
        // The socket may change while connecting (the next address or host after one refused,
        // SSL then plain), and libpq's new socket usually gets the closed one's number, which
        // the reactor no longer watches: registered anew for each wait.
        sync_socket(true);
        if (socket_fd_ < 0) fail_connection("cannot connect to PostgreSQL");
        try {
            co_await wait(poll == PGRES_POLLING_READING ? Direction::read : Direction::write,
                          deadline);
        } catch (const DbError& e) {
            if (e.code() != errc::store_timeout) throw;
            broken_ = true;
        }
        if (broken_) {
            throw DbError(errc::store_unavailable,
                          "cannot connect to PostgreSQL: no answer within " +
                              std::to_string(timeouts_.connect.count()) + " ms");
        }
        poll = PQconnectPoll(conn_);
    }
    sync_socket();
    if (PQsetnonblocking(conn_, 1) != 0) fail_connection("cannot make the connection non-blocking");
    // The server-side limit for every statement; a deadline of our own backs it up. A server
    // configured without synchronous commit still commits our transactions synchronously. And
    // every transaction is READ COMMITTED whatever the role or database defaults to: the store
    // takes an advisory lock and then reads, and only there does each statement see what was
    // committed before it (under REPEATABLE READ the first read fixes the snapshot before the
    // lock is held, and two instances could both accept the same body or scope).
    Params params;
    params.text(std::to_string(timeouts_.statement.count()) + "ms");
    co_await exec(
        "SELECT set_config('statement_timeout', $1, false), "
        "CASE WHEN current_setting('synchronous_commit') = 'off' "
        "THEN set_config('synchronous_commit', 'on', false) END, "
        "set_config('default_transaction_isolation', 'read committed', false)",
        std::move(params), timeouts_.connect);
}

asio::awaitable<void> Connection::flush(Deadline deadline) {
    for (;;) {
        const int r = PQflush(conn_);
        if (r == 0) co_return;
        if (r < 0) fail_connection("sending to PostgreSQL");
        // The server may be blocked writing to us: read while waiting to write.
        co_await wait(Direction::read_or_write, deadline);
        if (!PQconsumeInput(conn_)) fail_connection("reading from PostgreSQL");
    }
}

asio::awaitable<void> Connection::until_readable(Deadline deadline) {
    while (PQisBusy(conn_)) {
        co_await wait(Direction::read, deadline);
        if (!PQconsumeInput(conn_)) fail_connection("reading from PostgreSQL");
    }
}

asio::awaitable<Rows> Connection::read_query(Deadline deadline, bool& aborted, std::string& error,
                                             std::string& sqlstate) {
    Rows rows;
    bool first = true;
    for (;;) {
        co_await until_readable(deadline);
        PGresult* result = PQgetResult(conn_);
        if (!result) break;
        const ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_PIPELINE_SYNC) {
            // Not expected here (the caller reads the sync itself); keep the protocol in step.
            PQclear(result);
            fail_connection("unexpected pipeline sync from PostgreSQL");
        }
        if (status == PGRES_PIPELINE_ABORTED) {
            aborted = true;
            PQclear(result);
        } else if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
                   status == PGRES_NONFATAL_ERROR) {
            if (error.empty()) {
                error = result_message(result);
                const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
                sqlstate = state ? state : "";
                if (error.empty()) error = "PostgreSQL reported an error";
            }
            PQclear(result);
        } else if (first) {
            rows = Rows(result);
            first = false;
        } else {
            PQclear(result);
        }
        // A connection lost mid-result ends with an error result and then NULL.
        if (PQstatus(conn_) != CONNECTION_OK) {
            forget_closed_socket();
            break;
        }
    }
    co_return rows;
}

asio::awaitable<const std::string*> Connection::prepare(std::string_view sql, const Params& params,
                                                        Deadline deadline) {
    if (auto it = prepared_.find(std::string(sql)); it != prepared_.end()) {
        co_return &it->second;
    }
    std::string name = "hookrelay_" + std::to_string(++next_statement_);
    const std::string text(sql);
    if (!PQsendPrepare(conn_, name.c_str(), text.c_str(), static_cast<int>(params.size()),
                       params.types())) {
        fail_connection("sending a statement to PostgreSQL");
    }
    co_await flush(deadline);
    bool aborted = false;
    std::string error, sqlstate;
    co_await read_query(deadline, aborted, error, sqlstate);
    if (PQstatus(conn_) != CONNECTION_OK) fail_connection("PostgreSQL closed the connection");
    if (!error.empty()) fail_statement(error, sqlstate);
    auto [it, inserted] = prepared_.emplace(text, std::move(name));
    co_return &it->second;
}

void Connection::send_prepared(const std::string& name, const Params& params) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    params.prepare(values, lengths);
    const std::vector<int> formats(params.size(), 1);
    if (!PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.size()), values.data(),
                             lengths.data(), formats.data(), 1)) {
        fail_connection("sending a statement to PostgreSQL");
    }
}

asio::awaitable<Rows> Connection::exec(std::string_view sql, Params params,
                                       std::chrono::milliseconds timeout) {
    if (!conn_ || broken_) throw DbError(errc::store_unavailable, "not connected to PostgreSQL");
    const Deadline deadline = statement_deadline(timeout);
    const std::string* name = co_await prepare(sql, params, deadline);
    send_prepared(*name, params);
    co_return co_await answer_of_one(deadline);
}

asio::awaitable<Rows> Connection::exec_once(std::string sql, Params params,
                                            std::chrono::milliseconds timeout) {
    if (!conn_ || broken_) throw DbError(errc::store_unavailable, "not connected to PostgreSQL");
    const Deadline deadline = statement_deadline(timeout);
    std::vector<const char*> values;
    std::vector<int> lengths;
    params.prepare(values, lengths);
    const std::vector<int> formats(params.size(), 1);
    if (!PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), params.types(),
                           values.data(), lengths.data(), formats.data(), 1)) {
        fail_connection("sending a statement to PostgreSQL");
    }
    co_return co_await answer_of_one(deadline);
}

asio::awaitable<Rows> Connection::answer_of_one(Deadline deadline) {
    co_await flush(deadline);
    bool aborted = false;
    std::string error, sqlstate;
    Rows rows = co_await read_query(deadline, aborted, error, sqlstate);
    if (!error.empty()) fail_statement(error, sqlstate);
    if (PQstatus(conn_) != CONNECTION_OK) fail_connection("PostgreSQL closed the connection");
    co_return rows;
}

asio::awaitable<std::vector<Rows>> Connection::pipeline(std::vector<Step> steps) {
    if (!conn_ || broken_) throw DbError(errc::store_unavailable, "not connected to PostgreSQL");
    Deadline deadline = statement_deadline();
    std::vector<const std::string*> names;
    names.reserve(steps.size());
    for (const Step& step : steps)
        names.push_back(co_await prepare(step.sql, step.params, deadline));

    if (!PQenterPipelineMode(conn_)) fail_connection("entering pipeline mode");
    for (std::size_t i = 0; i < steps.size(); ++i) send_prepared(*names[i], steps[i].params);
    if (!PQpipelineSync(conn_)) fail_connection("sending to PostgreSQL");
    co_await flush(deadline);

    std::vector<Rows> out;
    out.reserve(steps.size());
    std::string error, sqlstate;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        // Each answer is progress: the deadline is per statement, as on the server.
        deadline = statement_deadline();
        bool aborted = false;
        out.push_back(co_await read_query(deadline, aborted, error, sqlstate));
        if (PQstatus(conn_) != CONNECTION_OK) fail_connection("PostgreSQL closed the connection");
    }
    co_await until_readable(deadline);
    PGresult* sync = PQgetResult(conn_);
    const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync) PQclear(sync);
    if (!synced || !PQexitPipelineMode(conn_)) fail_connection("PostgreSQL pipeline out of step");
    if (!error.empty()) fail_statement(error, sqlstate);
    co_return out;
}

asio::awaitable<bool> Connection::wait_input(std::chrono::milliseconds timeout) {
    if (!conn_ || broken_) throw DbError(errc::store_unavailable, "not connected to PostgreSQL");
    if (cancelled_) co_return false;
    timer_.expires_after(timeout);
    auto r = co_await (socket_.async_wait(asio::posix::descriptor_base::wait_read, k_use_tuple) ||
                       timer_.async_wait(k_use_tuple));
    if (cancelled_ || r.index() == 1) co_return false;
    if (const auto ec = std::get<0>(std::get<0>(r))) {
        fail_connection("waiting for the connection: " + ec.message());
    }
    if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) {
        fail_connection("PostgreSQL closed the connection");
    }
    co_return true;
}

std::vector<std::string> Connection::take_notifications() {
    std::vector<std::string> out;
    if (!conn_) return out;
    while (PGnotify* n = PQnotifies(conn_)) {
        out.emplace_back(n->extra ? n->extra : "");
        PQfreemem(n);
    }
    return out;
}

}  // namespace hookrelay::store::postgres
