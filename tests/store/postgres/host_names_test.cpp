// The PostgreSQL URL's host names: looked up by hookrelay within connect_timeout (libpq would look
// them up itself inside PQconnectPoll, blocking the store's one thread for as long as DNS takes),
// each address tried in turn under the name, and sockets, addresses and hostaddr left to libpq.
#include "pg_test_support.hpp"
#include "store/postgres/connection.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace hookrelay::store::test {
namespace {

using namespace std::chrono_literals;
using postgres::ConnInfo;

constexpr const char* k_name = "db.hookrelay.test";

// A port nothing listens on now, on 127.0.0.1 (the kernel's choice).
int unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::runtime_error("bind failed");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

// What the store asked to look up, and what it was told.
struct Lookups {
    std::mutex mutex;
    std::vector<std::string> asked;
    std::vector<std::string> answer;  // the addresses every lookup gets
    bool answers = true;              // false: never answers (a DNS server that is gone)

    PostgresOptions options(std::string instance = "instance-a") {
        auto o = pg_options(std::move(instance));
        o.lookup = [this](const std::string& host, auto done) {
            std::lock_guard lock(mutex);
            asked.push_back(host);
            if (answers) done(answer, "");
        };
        return o;
    }
    std::vector<std::string> names() {
        std::lock_guard lock(mutex);
        return asked;
    }
};

TEST(PostgresStoreHostNames, ANameWhoseLookupDoesNotAnswerFailsTheConnectInConnectTimeout) {
    Lookups lookups;
    lookups.answers = false;
    auto config = pg_config(std::string("host=") + k_name + " port=5432 dbname=hookrelay");
    config.postgres.connect_timeout = 300ms;
    std::string why;
    auto store = PostgresStore::open(config, lookups.options(), &why);
    ASSERT_FALSE(store);
    EXPECT_TRUE(is_retryable(store.error())) << store.error().message();
    EXPECT_NE(why.find("look up db.hookrelay.test: no answer within 300 ms"), std::string::npos)
        << why;
    EXPECT_EQ(lookups.names(), std::vector<std::string>{k_name});
}

TEST(PostgresStoreHostNames, ANameThatIsNotFoundSaysSo) {
    Lookups lookups;
    auto o = lookups.options();
    o.lookup = [](const std::string&, auto done) { done({}, "Host not found (authoritative)"); };
    std::string why;
    auto store = PostgresStore::open(pg_config(std::string("host=") + k_name + " dbname=hookrelay"),
                                     o, &why);
    ASSERT_FALSE(store);
    EXPECT_NE(why.find("look up db.hookrelay.test: Host not found (authoritative)"),
              std::string::npos)
        << why;
}

// A server listening on 127.0.0.1 only: the first address refuses, the second is taken, and the
// store works there; for a name's addresses and for a list of them in the URL.
TEST(PostgresStoreHostNames, EachAddressIsTriedInTurnAndTheStoreWorksOnTheOneThatAnswers) {
    const int port = unused_port();
    const std::string options = "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port);
    ::setenv("HOOKRELAY_PG_OPTIONS", options.c_str(), 1);
    std::unique_ptr<PrivateServer> server;
    try {
        server = std::make_unique<PrivateServer>();
    } catch (...) {
        ::unsetenv("HOOKRELAY_PG_OPTIONS");
        throw;
    }
    ::unsetenv("HOOKRELAY_PG_OPTIONS");
    TestDatabase db(server->conninfo() + " port=" + std::to_string(port));
    Lookups lookups;
    lookups.answer = {"127.0.0.2", "127.0.0.1"};
    const std::string url = "postgresql://hookrelay@" + std::string(k_name) + ":" +
                            std::to_string(port) + "/" + db.name();
    std::string why;
    auto store = PostgresStore::open(pg_config(url), lookups.options(), &why);
    ASSERT_TRUE(store) << why;
    const auto base = now_ms();
    accept(**store, delivery("by-name", base), {trigger()});
    const auto batch = claim(**store, "ci", base);
    ASSERT_EQ(batch.claims.size(), 1u);
    EXPECT_EQ(batch.claims[0].trigger.delivery_id, "by-name");
    const auto names = lookups.names();
    ASSERT_FALSE(names.empty());
    for (const auto& name : names) EXPECT_EQ(name, k_name);
    (*store)->close();

    // Two hosts with a port each, the name giving two addresses: a port for each address.
    const std::string each = "postgresql://hookrelay@" + std::string(k_name) + ":" +
                             std::to_string(port) + ",127.0.0.1:" + std::to_string(port) + "/" +
                             db.name();
    auto by_each = PostgresStore::open(pg_config(each), lookups.options("instance-c"), &why);
    ASSERT_TRUE(by_each) << why;
    accept(**by_each, delivery("by-each", base), {trigger()});
    (*by_each)->close();
    // Two hosts and no port at all: the default, PGPORT here, for every address.
    ::setenv("PGPORT", std::to_string(port).c_str(), 1);
    const std::string two =
        std::string("host=") + k_name + ",127.0.0.1 user=hookrelay dbname=" + db.name();
    auto by_two = PostgresStore::open(pg_config(two), lookups.options("instance-e"), &why);
    ASSERT_TRUE(by_two) << why;
    accept(**by_two, delivery("by-two", base), {trigger()});
    (*by_two)->close();
    ::unsetenv("PGPORT");  // after the store's threads are done with libpq
    // A name not found among them: the others are still tried, each with its own port.
    auto o = lookups.options("instance-d");
    o.lookup = [](const std::string& host, auto done) {
        if (host == "nowhere.hookrelay.test") return done({}, "Name or service not known");
        done({"127.0.0.1"}, "");
    };
    const std::string skipped = "postgresql://hookrelay@nowhere.hookrelay.test:1," +
                                std::string(k_name) + ":" + std::to_string(port) + "/" + db.name();
    auto by_skip = PostgresStore::open(pg_config(skipped), o, &why);
    ASSERT_TRUE(by_skip) << why;
    accept(**by_skip, delivery("by-skip", base), {trigger()});
    (*by_skip)->close();

    // A list of addresses, which libpq goes through itself: the socket of the next one usually
    // gets the number of the one refused.
    const std::string list = "host=127.0.0.2,127.0.0.1 port=" + std::to_string(port) +
                             " user=hookrelay dbname=" + db.name();
    auto second = PostgresStore::open(pg_config(list), pg_options("instance-b"), &why);
    ASSERT_TRUE(second) << why;
    accept(**second, delivery("by-list", base), {trigger()});
    (*second)->close();
}

TEST(PostgresStoreHostNames, SocketDirectoriesAndAddressesAreLeftToLibpq) {
    for (const char* name : {"PGPORT", "PGHOSTADDR", "PGSERVICE"}) ::unsetenv(name);
    std::string why;
    const auto info = ConnInfo::parse(
        "host=/run/postgresql,db.a,127.0.0.1,::1,,@abstract "
        "port=1,2,3,4,5,6 dbname=hookrelay",
        &why);
    ASSERT_TRUE(info) << why;
    const auto& hosts = info->hosts_to_look_up();
    ASSERT_EQ(hosts.size(), 6u);
    std::vector<std::string> names;
    for (const auto& h : hosts) {
        if (h.name) names.push_back(h.host);
    }
    EXPECT_EQ(names, std::vector<std::string>{"db.a"});
    EXPECT_EQ(hosts[1].port, "2");
    EXPECT_EQ(hosts[4].host, "");

    for (const char* url : {"host=/run/postgresql dbname=hookrelay",
                            "postgresql://127.0.0.1:5432/hookrelay", "postgresql://[::1]/hookrelay",
                            "host=db.a hostaddr=10.0.0.1 dbname=hookrelay", "dbname=hookrelay"}) {
        const auto left = ConnInfo::parse(url, &why);
        ASSERT_TRUE(left) << url << ": " << why;
        EXPECT_TRUE(left->hosts_to_look_up().empty()) << url;
    }
    // One port for every host: each entry gets it; none at all: libpq's default (PGPORT, else
    // 5432); a list (a URI of several hosts gives one, empty where a host has none): each its
    // own, an empty one left for libpq to make 5432 (not PGPORT).
    const auto one_port = ConnInfo::parse("host=db.a,db.b port=5433", &why);
    ASSERT_TRUE(one_port) << why;
    ASSERT_EQ(one_port->hosts_to_look_up().size(), 2u);
    EXPECT_EQ(one_port->hosts_to_look_up()[1].port, "5433");
    ::setenv("PGPORT", "6432", 1);
    const auto none = ConnInfo::parse("host=db.a,db.b dbname=hookrelay", &why);
    const auto listed = ConnInfo::parse("postgresql://db.a,db.b:5433/hookrelay", &why);
    ::unsetenv("PGPORT");
    ASSERT_TRUE(none) << why;
    ASSERT_EQ(none->hosts_to_look_up().size(), 2u);
    EXPECT_EQ(none->hosts_to_look_up()[0].port, "6432");
    EXPECT_EQ(none->hosts_to_look_up()[1].port, "6432");
    ASSERT_TRUE(listed) << why;
    ASSERT_EQ(listed->hosts_to_look_up().size(), 2u);
    EXPECT_EQ(listed->hosts_to_look_up()[0].port, "");
    EXPECT_EQ(listed->hosts_to_look_up()[1].port, "5433");
    // A service file or PGHOSTADDR may say where to connect: left to libpq.
    const auto service = ConnInfo::parse("host=db.a service=hookrelay", &why);
    ASSERT_TRUE(service) << why;
    EXPECT_TRUE(service->hosts_to_look_up().empty());
    ::setenv("PGHOSTADDR", "10.0.0.1", 1);
    const auto env = ConnInfo::parse("host=db.a dbname=hookrelay", &why);
    ::unsetenv("PGHOSTADDR");
    ASSERT_TRUE(env) << why;
    EXPECT_TRUE(env->hosts_to_look_up().empty());
}

}  // namespace
}  // namespace hookrelay::store::test
