// What the daemon keeps of a delivery's headers, as the admin API and `hookrelay deliveries show`
// show it: the forge's headers and where the request came from, never a credential.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

constexpr const char* k_secret = "stored-headers-secret-a3d2";
constexpr const char* k_admin_token = "stored-headers-admin-6e1f";

const char* k_config = R"(listen: 127.0.0.1:0
state_dir: ./var
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:9/"}
rules:
  - name: pushes
    when: {event: push}
    trigger: {jenkins: ci, job: "{{ repository.name }}/{{ branch }}"}
)";

// Credential-like headers a proxy, a misconfigured forge or a curious sender may add, with
// values that must never be shown again.
const Headers k_credentials = {
    {"Authorization", "Bearer stored-headers-authorization-value"},
    {"Proxy-Authorization", "Basic stored-headers-proxy-value"},
    {"X-Api-Key", "stored-headers-api-key-value"},
    {"Cookie", "session=stored-headers-cookie-value"},
    {"X-Gitlab-Token", "stored-headers-gitlab-token-value"},
};

class StoredHeaders : public ::testing::Test {
  protected:
    StoredHeaders() {
        Headers h = push_.headers;
        h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, push_.body));
        h.emplace_back("X-Forwarded-For", "203.0.113.7");
        for (const auto& header : k_credentials) h.push_back(header);
        posted_ = http_request(daemon_.port(), "POST", "/hooks/github", h, push_.body);
    }

    static Daemon::Options options() {
        Daemon::Options o;
        o.config_yaml = k_config;
        o.env = {{"GH_SECRET", k_secret}, {"ADMIN_TOKEN", k_admin_token}};
        return o;
    }

    Fixture push_ = github_push("headers-1");
    Daemon daemon_{options()};
    HttpResult posted_;
};

TEST_F(StoredHeaders, AdminApiShowsForgeHeadersAndNoCredentials) {
    ASSERT_EQ(posted_.status, 202u) << posted_.body;
    const auto r = http_request(daemon_.admin_port(), "GET", "/api/v1/deliveries/headers-1",
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto delivery = json::parse(r.body);
    const auto& headers = delivery.at("headers").as_object();

    for (const auto& [name, value] : k_credentials) {
        EXPECT_FALSE(headers.contains(name)) << name << " stored";
        EXPECT_EQ(r.body.find(value), std::string::npos) << value << " shown";
    }
    EXPECT_FALSE(headers.contains("X-Hub-Signature-256"));
    EXPECT_EQ(r.body.find(github_signature(k_secret, push_.body).substr(7)), std::string::npos);

    EXPECT_EQ(headers.at("X-GitHub-Event"), "push");
    EXPECT_EQ(headers.at("X-GitHub-Delivery"), "headers-1");
    EXPECT_EQ(headers.at("X-GitHub-Hook-ID"), "109948940");
    EXPECT_EQ(headers.at("Content-Type"), "application/json");
    EXPECT_EQ(headers.at("User-Agent"), "GitHub-Hookshot/044aadd");
    EXPECT_EQ(headers.at("X-Forwarded-For"), "203.0.113.7");
}

TEST_F(StoredHeaders, DeliveriesShowPrintsNoCredentials) {
    ASSERT_EQ(posted_.status, 202u) << posted_.body;
    const auto show = run_hookrelay({"deliveries", "show", "headers-1", "--json", "--admin",
                                     "127.0.0.1:" + std::to_string(daemon_.admin_port())},
                                    {{"HOOKRELAY_ADMIN_TOKEN", k_admin_token}});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    EXPECT_NE(show.out.find("GitHub-Hookshot/044aadd"), std::string::npos) << show.out;
    for (const auto& [name, value] : k_credentials) {
        EXPECT_EQ(show.out.find(value), std::string::npos) << name << " shown";
    }
}

}  // namespace
}  // namespace hookrelay::test
