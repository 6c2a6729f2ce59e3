#include "support/stored_triggers.hpp"

#include "store/factory.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

// How long one store call may take before the reading gives up.
constexpr std::chrono::seconds k_store_deadline{20};

std::string percent_encode(const std::string& text) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 0x0f];
        }
    }
    return out;
}

std::string text(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

template <class T, class Start>
T wait_for_store(Start&& start) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    start([promise](T value) { promise->set_value(std::move(value)); });
    if (future.wait_for(k_store_deadline) != std::future_status::ready) {
        throw std::runtime_error("the store did not answer in time");
    }
    return future.get();
}

}  // namespace

std::vector<TriggerRow> read_triggers(const Daemon& daemon, const std::string& admin_token) {
    const Headers auth{{"Authorization", "Bearer " + admin_token}};
    std::vector<json::object> deliveries;  // newest first
    std::string cursor;
    for (;;) {
        const auto page = http_request(
            daemon.admin_port(), "GET",
            "/api/v1/deliveries?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor), auth);
        if (page.status != 200) return {};
        const auto body = json::parse(page.body).as_object();
        for (const auto& d : body.at("deliveries").as_array()) deliveries.push_back(d.as_object());
        cursor = text(body, "next_cursor");
        if (cursor.empty()) break;
    }
    std::vector<TriggerRow> rows;
    for (auto it = deliveries.rbegin(); it != deliveries.rend(); ++it) {
        std::string id = text(*it, "delivery_id");
        if (id.empty()) id = "#" + std::to_string(it->at("seq").as_int64());
        const auto detail = http_request(
            daemon.admin_port(), "GET",
            "/api/v1/deliveries/" + percent_encode(id) + "?source=" + text(*it, "source"), auth);
        if (detail.status != 200) return {};
        const auto parsed = json::parse(detail.body);
        for (const auto& t : parsed.at("triggers").as_array()) {
            const auto& o = t.as_object();
            rows.push_back({text(o, "id"), text(o, "rule"), text(o, "jenkins"), text(o, "job"),
                            text(o, "state"), static_cast<int>(o.at("attempts").as_int64()),
                            text(o, "last_outcome"), text(o, "queue_url")});
        }
    }
    return rows;
}

std::vector<TriggerRow> read_stored_triggers(const Config& config) {
    store::OpenOptions options;
    options.lock_state_dir = false;
    options.version = "integration-test";
    std::string why;
    auto opened = store::open_store(config, options, &why);
    if (!opened) throw std::runtime_error("cannot open the store: " + why);
    const auto store = *opened;

    std::vector<DeliverySummary> deliveries;  // newest first
    DeliveryQuery query;
    query.limit = 1000;
    for (;;) {
        auto page = wait_for_store<result<DeliveryPage>>(
            [&](auto done) { store->list_deliveries(query, std::move(done)); });
        if (!page) throw std::runtime_error("listing failed: " + page.error().message());
        for (auto& d : page->items) deliveries.push_back(std::move(d));
        if (!page->next_before_seq) break;
        query.before_seq = page->next_before_seq;
    }
    std::vector<TriggerRow> rows;
    for (auto it = deliveries.rbegin(); it != deliveries.rend(); ++it) {
        auto detail = wait_for_store<result<std::optional<DeliveryDetail>>>([&](auto done) {
            store->get_delivery(it->source, "#" + std::to_string(it->seq), std::move(done));
        });
        if (!detail || !*detail) throw std::runtime_error("a listed delivery could not be read");
        for (const auto& h : (*detail)->triggers) {
            const auto& t = h.trigger;
            rows.push_back({t.id, t.request.rule, t.request.jenkins,
                            job_display_path(t.request.job), std::string(to_string(t.state)),
                            t.attempts, t.last_outcome, t.queue_url});
        }
    }
    store->close();
    return rows;
}

}  // namespace hookrelay::test
