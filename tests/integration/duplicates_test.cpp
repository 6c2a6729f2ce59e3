// Replays and retries against the real daemon: an old signed body under a new delivery id
// (GitHub signatures carry no timestamp), and deliveries that carry no id at all.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <boost/json.hpp>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

constexpr const char* k_secret = "duplicates-test-secret-0c4e";
constexpr const char* k_gitlab_token = "duplicates-test-token-77a1";
constexpr const char* k_admin_token = "duplicates-test-admin-5b90";

// `github_extra` goes into the github source's map.
std::string config(const std::string& github_extra = "") {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}")" +
           github_extra + R"(}
  gitlab: {provider: gitlab, token: "${env:GL_TOKEN}"}
jenkins:
  ci: {url: "http://127.0.0.1:9/"}
rules:
  - name: pushes
    when: {event: push}
    trigger: {jenkins: ci, job: "{{ repository.name }}/{{ branch }}"}
)";
}

Daemon::Options options(std::string yaml) {
    Daemon::Options o;
    o.config_yaml = std::move(yaml);
    o.env = {{"GH_SECRET", k_secret}, {"GL_TOKEN", k_gitlab_token}, {"ADMIN_TOKEN", k_admin_token}};
    return o;
}

HttpResult post_github(const Daemon& daemon, const Fixture& f) {
    Headers h = f.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, f.body));
    return http_request(daemon.port(), "POST", "/hooks/github", h, f.body);
}

// The GitLab push fixture as an older GitLab (< 14.8) sends it: no Idempotency-Key and no
// event UUID, so nothing but the body identifies the delivery.
HttpResult post_gitlab_without_id(const Daemon& daemon) {
    const auto f = load_fixture("gitlab", "push-branch-update");
    Headers h;
    for (const auto& [k, v] : f.headers) {
        if (k != "Idempotency-Key" && k != "X-Gitlab-Event-UUID") h.emplace_back(k, v);
    }
    h.emplace_back("X-Gitlab-Token", k_gitlab_token);
    return http_request(daemon.port(), "POST", "/hooks/gitlab", h, f.body);
}

json::object answer(const HttpResult& r) {
    return json::parse(r.body).as_object();
}

// What `hookrelay deliveries list` shows for a source.
json::array deliveries(const Daemon& daemon, const std::string& source) {
    const auto r = http_request(daemon.admin_port(), "GET", "/api/v1/deliveries?source=" + source,
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body).at("deliveries").as_array();
}

TEST(Duplicates, OldBodyUnderANewIdIsADuplicateWithinTheBodyWindow) {
    Daemon daemon(options(config(", duplicate_body_window: 10m")));
    ASSERT_EQ(post_github(daemon, github_push("original")).status, 202u);

    // The attacker kept the signed body and sends it again under a fresh delivery id.
    const auto r = post_github(daemon, github_push("replayed"));
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto a = answer(r);
    EXPECT_EQ(a.at("status"), "duplicate");
    EXPECT_EQ(a.at("duplicate_of"), "original");
    EXPECT_NE(std::string(a.at("reason").as_string()).find("same body as delivery original"),
              std::string::npos)
        << r.body;
    const auto listed = deliveries(daemon, "github");
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed.at(0).at("delivery_id"), "original");
    EXPECT_EQ(listed.at(0).at("triggers").at("pending"), 1);
}

std::string sha256_hex(const std::string& data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < size; ++i) {
        out += k_hex[digest[i] >> 4];
        out += k_hex[digest[i] & 0x0f];
    }
    return out;
}

TEST(Duplicates, StoredBodyDigestIsTheBodysSha256) {
    Daemon daemon(options(config(", duplicate_body_window: 10m")));
    const auto push = github_push("digest-1");
    ASSERT_EQ(post_github(daemon, push).status, 202u);
    const auto r = http_request(daemon.admin_port(), "GET", "/api/v1/deliveries/digest-1",
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json::parse(r.body).at("body_sha256"), sha256_hex(push.body).c_str());
}

TEST(Duplicates, WithoutABodyWindowANewIdIsANewDelivery) {
    Daemon daemon(options(config()));
    ASSERT_EQ(post_github(daemon, github_push("first")).status, 202u);
    // The default for forges that send an id: GitHub's manual redelivery reuses it.
    EXPECT_EQ(post_github(daemon, github_push("second")).status, 202u);
    EXPECT_EQ(deliveries(daemon, "github").size(), 2u);
}

TEST(Duplicates, RedeliveryUnderTheSameIdIsNamedAsSuch) {
    Daemon daemon(options(config(", duplicate_body_window: 10m")));
    ASSERT_EQ(post_github(daemon, github_push("d-1")).status, 202u);
    const auto r = post_github(daemon, github_push("d-1"));
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto a = answer(r);
    EXPECT_EQ(a.at("status"), "duplicate");
    EXPECT_EQ(a.at("duplicate_of"), "d-1");
    EXPECT_EQ(a.at("reason"), "delivery id d-1 was received before");
}

TEST(Duplicates, DeliveryWithoutAnIdIsDeduplicatedByItsBodyByDefault) {
    Daemon daemon(options(config()));
    const auto first = post_gitlab_without_id(daemon);
    ASSERT_EQ(first.status, 202u) << first.body;
    const auto listed = deliveries(daemon, "gitlab");
    ASSERT_EQ(listed.size(), 1u);
    const auto seq = "#" + std::to_string(listed.at(0).at("seq").as_int64());

    const auto again = post_gitlab_without_id(daemon);
    ASSERT_EQ(again.status, 200u) << again.body;
    const auto a = answer(again);
    EXPECT_EQ(a.at("status"), "duplicate");
    EXPECT_EQ(a.at("duplicate_of"), seq.c_str());
    EXPECT_EQ(deliveries(daemon, "gitlab").size(), 1u);
}

}  // namespace
}  // namespace hookrelay::test
