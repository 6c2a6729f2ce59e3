// One libpq connection driven by Asio: non-blocking libpq, its socket watched with
// posix::stream_descriptor::async_wait, every wait under a deadline. Statements are prepared once
// per connection and run with binary parameters and results, alone or pipelined (one round trip
// for a whole transaction). Implementation header of the PostgreSQL backend; pulls in Asio.
#pragma once

#include <hookrelay/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

extern "C" {
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
}

namespace hookrelay::store::postgres {

/// A failure of PostgreSQL work: the store error it stands for and one line for the operator,
/// never containing the connection string's password.
class DbError : public std::runtime_error {
  public:
    DbError(errc code, const std::string& message, std::string sqlstate = {})
        : std::runtime_error(message), code_(code), sqlstate_(std::move(sqlstate)) {}
    errc code() const noexcept { return code_; }
    /// The server's SQLSTATE ("" when the failure was on this side: connection, deadline).
    const std::string& sqlstate() const noexcept { return sqlstate_; }

  private:
    errc code_;
    std::string sqlstate_;
};

/// The store error a SQLSTATE stands for: connection trouble and server shutdown are
/// store_unavailable, statement_timeout is store_timeout, deadlocks, serialization failures,
/// lock waits and exhausted resources are store_busy, a full disk is store_full; anything else
/// is store_unavailable.
errc classify_sqlstate(std::string_view sqlstate) noexcept;

/// How a host name is looked up: `done` gets its addresses (numeric, as libpq's hostaddr takes
/// them) or why there are none; it may be called on any thread, late or never (the connect stops
/// waiting at its deadline). Unset: getaddrinfo on a thread of its own (util/resolve.hpp).
using Lookup = std::function<void(
    const std::string& host,
    std::function<void(std::vector<std::string> addresses, std::string error)> done)>;

/// store.postgres.url, parsed once: what libpq is given, how it is described, and every form of
/// its password so no message ever shows it. Immutable; shared by every connection.
class ConnInfo {
  public:
    /// Parses a libpq URI (postgresql://…) or key=value string. On failure: nullopt and `why`
    /// gets one line without the password.
    static std::shared_ptr<const ConnInfo> parse(std::string_view url, std::string* why,
                                                 Lookup lookup = {});

    /// One entry of the URL's host list, when a connect looks its names up itself: libpq would
    /// look them up inside PQconnectPoll, blocking the backend's one thread (every connection
    /// of the pool) for as long as DNS takes, with no deadline.
    struct Host {
        std::string host;
        std::string port;   ///< as libpq would take it ("": its built-in default, 5432)
        bool name = false;  ///< neither a socket directory nor an address: to look up
    };
    /// The URL's hosts when at least one is a name to look up (and no hostaddr or service is
    /// given, in the URL or the environment); empty when libpq is given the URL as it is.
    const std::vector<Host>& hosts_to_look_up() const noexcept { return hosts_; }
    const Lookup& lookup() const noexcept { return lookup_; }

    const std::string& url() const noexcept { return url_; }
    /// "host=db port=5432 dbname=hookrelay user=hookrelay" (what was given of these).
    const std::string& describe() const noexcept { return description_; }
    /// `text` with every occurrence of the password (as written, percent-decoded, or as libpq
    /// read it) replaced by "***", and cut to its first line. A password (or part) shorter than
    /// k_whole_word_below is replaced only where it stands as a word of its own, as a regular
    /// expression's \b would find it: "pg" in "'pg'" or ":pg@", not in "pg_hba.conf", so that a
    /// short password does not garble every message that happens to contain its letters.
    std::string scrub(std::string_view text) const;
    static constexpr std::size_t k_whole_word_below = 9;

  private:
    std::string url_;
    std::string description_;
    std::vector<std::string> secrets_;
    std::vector<Host> hosts_;
    Lookup lookup_;
};

/// PostgreSQL type OIDs the backend sends and reads (pg_type.h; stable across versions).
namespace oid {
constexpr unsigned boolean = 16, bytea = 17, int8 = 20, int2 = 21, int4 = 23, text = 25, oid = 26,
                   varchar = 1043, name = 19, bpchar = 1042, text_array = 1009, bytea_array = 1001,
                   int8_array = 1016;
}  // namespace oid

/// The parameters of one statement, in binary format with explicit types, so any bytes go into a
/// bytea unchanged and text is checked by the server. Values are copied, except by *_ref, which
/// must outlive the statement.
class Params {
  public:
    Params& text(std::string_view value) { return add(oid::text, value); }
    Params& bytes(std::string_view value) { return add(oid::bytea, value); }
    /// A reference to bytes (a body of megabytes): not copied.
    Params& bytes_ref(std::string_view value);
    Params& int8(std::int64_t value);
    Params& int4(std::int32_t value);
    Params& boolean(bool value);
    /// A typed NULL.
    Params& null(unsigned type);
    /// text or NULL when `value` is empty.
    Params& text_or_null(std::string_view value) {
        return value.empty() ? null(oid::text) : text(value);
    }
    Params& text_array(const std::vector<std::string>& values);
    Params& bytea_array(const std::vector<std::string>& values);
    Params& int8_array(const std::vector<std::int64_t>& values);

    std::size_t size() const noexcept { return types_.size(); }
    const unsigned* types() const noexcept { return types_.data(); }
    /// Pointers into this object: valid until the next add.
    void prepare(std::vector<const char*>& values, std::vector<int>& lengths) const;

  private:
    Params& add(unsigned type, std::string_view value);
    Params& add_owned(unsigned type, std::string value);

    struct Value {
        bool null = false;
        bool owned = true;
        std::string data;       // when owned
        std::string_view view;  // when not owned
    };
    std::vector<unsigned> types_;
    std::vector<Value> values_;
};

/// The rows (binary format) or command outcome of one statement. Getters check the column type:
/// a mismatch is a bug in the SQL and throws DbError.
class Rows {
  public:
    Rows() = default;
    explicit Rows(PGresult* result);
    Rows(Rows&&) noexcept = default;
    Rows& operator=(Rows&&) noexcept = default;

    int size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    /// Rows a command changed (INSERT/UPDATE/DELETE), 0 when it says none.
    std::int64_t affected() const;

    bool is_null(int row, int column) const;
    /// int2/int4/int8/oid columns.
    std::int64_t int64(int row, int column) const;
    /// text/bytea/varchar/name columns: the raw bytes.
    std::string text(int row, int column) const;
    bool boolean(int row, int column) const;

  private:
    struct Clear {
        void operator()(PGresult* result) const noexcept;
    };
    const char* cell(int row, int column, unsigned type_class, int& length) const;

    std::unique_ptr<PGresult, Clear> result_;
};

/// One statement of a pipeline.
struct Step {
    std::string_view sql;  ///< must outlive the pipeline call (a constant)
    Params params;
};

/// Deadlines of a connection's work.
struct Timeouts {
    std::chrono::milliseconds connect{5'000};    ///< the whole connect and session setup
    std::chrono::milliseconds statement{5'000};  ///< server-side statement_timeout
    /// Added to `statement` for the client-side deadline, so the server's own timeout (an error
    /// that leaves the connection usable) normally comes first.
    std::chrono::milliseconds margin{1'000};
};

/// One connection. Not thread-safe: one coroutine at a time uses it, on its executor.
/// Every member that awaits throws DbError on failure; after a failure that is not the
/// server's answer to a statement (connection lost, deadline passed) the connection is broken()
/// and must be discarded.
class Connection {
  public:
    Connection(boost::asio::any_io_executor executor, std::shared_ptr<const ConnInfo> info,
               Timeouts timeouts, std::string application_name);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Connects (within timeouts.connect) and sets the session up: statement_timeout, and
    /// synchronous_commit on when the server's default is off (a submit is answered only after
    /// its commit is durable).
    boost::asio::awaitable<void> connect();

    /// Connected, not broken, and not inside a transaction; reads what the server sent while the
    /// connection was idle (a server that shut down says so), so a dead connection is noticed
    /// before it is used.
    bool alive();
    bool broken() const noexcept { return broken_; }
    void mark_broken() noexcept { broken_ = true; }
    /// Whether the pool's warm-up ran on this connection (Pool::set_warm_up).
    bool warmed() const noexcept { return warmed_; }
    void mark_warmed() noexcept { warmed_ = true; }
    /// Whether the session is idle (no transaction open, no statement running).
    bool idle() const noexcept;

    /// Runs one statement (prepared on first use on this connection) under the statement
    /// deadline, or `timeout` when given.
    boost::asio::awaitable<Rows> exec(std::string_view sql, Params params = {},
                                      std::chrono::milliseconds timeout = {});

    /// Runs one statement without preparing it or keeping it (statements whose text is made for
    /// one use, such as DDL naming a table), under the statement deadline or `timeout`.
    boost::asio::awaitable<Rows> exec_once(std::string sql, Params params = {},
                                           std::chrono::milliseconds timeout = {});

    /// Runs the steps in pipeline mode (one round trip) and answers their results in order.
    /// When a step fails, the later ones do not run (a transaction among them is rolled back)
    /// and the first failure is thrown once everything was read.
    boost::asio::awaitable<std::vector<Rows>> pipeline(std::vector<Step> steps);

    /// LISTEN connections: waits until the server sends something or `timeout` passes, and
    /// reads it. True when something arrived, false on timeout or cancel().
    boost::asio::awaitable<bool> wait_input(std::chrono::milliseconds timeout);
    /// The payloads of the notifications received so far.
    std::vector<std::string> take_notifications();

    /// Ends the waits in progress (they throw store_closed, or wait_input answers false).
    void cancel();
    /// Closes the connection (PQfinish).
    void close();

  private:
    enum class Direction { read, write, read_or_write };
    using Deadline = std::chrono::steady_clock::time_point;

    boost::asio::awaitable<void> wait(Direction direction, Deadline deadline);
    boost::asio::awaitable<void> flush(Deadline deadline);
    boost::asio::awaitable<void> until_readable(Deadline deadline);
    /// The results of one query, up to the NULL that ends them; nullptr-free.
    boost::asio::awaitable<Rows> read_query(Deadline deadline, bool& aborted, std::string& error,
                                            std::string& sqlstate);
    boost::asio::awaitable<const std::string*> prepare(std::string_view sql, const Params& params,
                                                       Deadline deadline);
    void send_prepared(const std::string& name, const Params& params);
    /// The answer to the one statement sent, once flushed; throws its failure.
    boost::asio::awaitable<Rows> answer_of_one(Deadline deadline);
    /// The host, hostaddr and port lists libpq is given for hosts_to_look_up(): each name's
    /// addresses looked up by `deadline` (on timer_, so cancel() ends the wait), each under the
    /// name (so TLS still checks it and ~/.pgpass still matches it), with a port for every
    /// entry. Throws when no host is left to try, or when the store closes meanwhile.
    struct Targets {
        std::string host, hostaddr, port;
    };
    boost::asio::awaitable<Targets> look_up_hosts(Deadline deadline);
    /// Watches the socket libpq uses now: when its number changed, or always when `anew` (a
    /// socket closed and another opened under the same number).
    void sync_socket(bool anew = false);
    void forget_closed_socket() noexcept;
    Deadline statement_deadline(std::chrono::milliseconds timeout = {}) const;
    [[noreturn]] void fail_connection(std::string_view what);
    [[noreturn]] void fail_statement(const std::string& message, const std::string& sqlstate);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<const ConnInfo> info_;
    Timeouts timeouts_;
    std::string application_name_;
    PGconn* conn_ = nullptr;
    boost::asio::posix::stream_descriptor socket_;
    int socket_fd_ = -1;
    boost::asio::steady_timer timer_;
    bool broken_ = false;
    bool cancelled_ = false;
    bool warmed_ = false;
    bool goodbye_ = false;  // the server sent a FATAL notice: it is closing this connection
    std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
    std::uint64_t next_statement_ = 0;
};

}  // namespace hookrelay::store::postgres
