// The loopback HTTP(S) server under the fakes (fake_jenkins.cpp, fake_forge_api.cpp): a real
// server on 127.0.0.1 with its own io_context on a background thread, that reads each request
// with Beast and answers what a handler function decides. It owns the sockets, TLS, restarts on
// the same port and answers that are delayed or withheld; the fake owns what the answers say.
//
// Included only by the fakes' .cpp files (Beast's request type is in the handler's signature).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay::test {

class LoopbackServer {
  public:
    using Request = boost::beast::http::request<boost::beast::http::string_body>;
    using Headers = std::vector<std::pair<std::string, std::string>>;

    /// What to answer to one request.
    struct Answer {
        int status = 200;
        Headers headers;  ///< written in this order; Content-Length is added
        std::string body;
        /// Never answer: the request stays unanswered and the connection open until the client
        /// closes it (or stop()); nothing more is read from it.
        bool withhold = false;
        /// Answer only after this long (0: at once).
        std::chrono::milliseconds delay{0};
        /// Called on the io thread when the client closed the connection while the answer was
        /// delayed or withheld (it never got it). May be empty.
        std::function<void()> on_abandoned;
        /// Called once on the io thread when the answer starts on its way to the client or never
        /// will (abandoned, stop()): the end of the request's time in flight. Not when the write
        /// completes: the client may read the answer and send its next request before then.
        /// May be empty.
        std::function<void()> on_released;
    };

    /// Decides the answer to one request; called on the io thread, one request at a time.
    using Handler = std::function<Answer(const Request&)>;

    struct Options {
        std::string name = "LoopbackServer";  ///< prefixes error messages, e.g. "FakeJenkins"
        bool tls = false;
        std::string cert_file, key_file;  ///< PEM; server certificate for 127.0.0.1
        std::uint16_t port = 0;           ///< 0: pick a free port
    };

    /// Binds 127.0.0.1:options.port and serves. Throws std::runtime_error "<name>: cannot
    /// listen on ..." or "<name>: cannot load certificate: ..." when it cannot.
    LoopbackServer(Options options, Handler handler);
    /// Closes every socket and joins the io thread: the handler and the answers' callbacks are
    /// not called after it returned.
    ~LoopbackServer();
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;

    /// The port bound first (kept across stop()/start()).
    std::uint16_t port() const;
    /// "http://127.0.0.1:PORT/" or "https://127.0.0.1:PORT/".
    std::string url() const;

    /// Closes the listening socket and every open connection (clients then get "connection
    /// refused"). Idempotent. Blocks until done.
    void stop();
    /// Listens again on the same port; no-op while serving. Throws as the constructor.
    void start();
    /// Whether it listens now.
    bool serving() const;

    /// TCP connections accepted since construction.
    std::size_t connections_accepted() const;

    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace hookrelay::test
