// End to end for every forge besides GitHub: the real binary, the fake Jenkins, and real payloads
// from tests/data/ signed the way each forge signs them. Asserts what the forge is answered,
// what Jenkins received, and what the admin API shows of the delivery.
#include "fakes/fake_jenkins.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

namespace hookrelay::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* k_secret = "forges-test-secret-5e0a";
constexpr const char* k_admin_token = "forges-test-admin-91b3";
// A GitLab signing token: whsec_ + base64 of its 32-byte key.
const std::string k_signing_key = "forges-test-signing-key-32-bytes";
const std::string k_signing_token = "whsec_" + to_base64(k_signing_key);
constexpr std::chrono::seconds k_deadline{20};

std::string config_for(const FakeJenkins& jenkins) {
    return R"(listen: 127.0.0.1:0
state_dir: ./var
log: {level: debug}
admin: {listen: "127.0.0.1:0", token: "${env:ADMIN_TOKEN}"}
dispatch: {poll_interval: 200ms}
sources:
  gitea: {provider: gitea, secret: "${env:FORGE_SECRET}"}
  forgejo: {provider: forgejo, secret: "${env:FORGE_SECRET}"}
  bitbucket: {provider: bitbucket-cloud, secret: "${env:FORGE_SECRET}"}
  bitbucket-dc: {provider: bitbucket-server, secret: "${env:FORGE_SECRET}"}
  gitlab: {provider: gitlab, signing_token: "${env:SIGNING_TOKEN}"}
  artifacts:
    provider: generic
    secret: "${env:FORGE_SECRET}"
    event: payload.event_type
    delivery_id: X-Delivery
    signature:
      header: X-Signature
      prefix: "sha256="
      timestamp_header: X-Timestamp
      content: "{timestamp}.{body}"
jenkins:
  ci:
    url: ")" +
           jenkins.url() +
           R"("
    user: hookrelay
    api_token: "${env:JENKINS_TOKEN}"
    retry: {initial: 50ms, max_delay: 100ms, max_age: 1h}
rules:
  - name: branches
    when: {event: push}
    trigger:
      jenkins: ci
      job: "{{ provider }}/{{ repository.name }}/{{ branch }}"
      parameters: {COMMIT: "{{ commit }}", REF: "{{ ref }}"}
  - name: pull-requests
    when: {event: pull_request, action: [opened, synchronize]}
    trigger:
      jenkins: ci
      job: "{{ provider }}/pr"
      parameters: {PR: "{{ pull_request.number }}", BRANCH: "{{ pull_request.source_branch }}"}
  - name: deployed-artifacts
    when: {provider: generic, forge_event: deployed, payload.data.repo_key: "libs-release-*"}
    trigger:
      jenkins: ci
      job: deploy
      parameters: {ARTIFACT: "{{ payload.data.path }}"}
)";
}

Daemon::Options options(const FakeJenkins& jenkins) {
    Daemon::Options o;
    o.config_yaml = config_for(jenkins);
    o.env = {{"FORGE_SECRET", k_secret},
             {"SIGNING_TOKEN", k_signing_token},
             {"JENKINS_TOKEN", "fake-api-token"},
             {"ADMIN_TOKEN", k_admin_token}};
    return o;
}

HttpResult post(const Daemon& daemon, const std::string& path, const Headers& headers,
                const std::string& body) {
    return http_request(daemon.port(), "POST", path, headers, body);
}

Headers with(Headers headers, std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return headers;
}

json::object answer(const HttpResult& r) {
    return json::parse(r.body).as_object();
}

json::value delivery(const Daemon& daemon, const std::string& id) {
    const auto r = http_request(daemon.admin_port(), "GET", "/api/v1/deliveries/" + id,
                                {{"Authorization", std::string("Bearer ") + k_admin_token}});
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body);
}

std::string header_of(const Fixture& f, std::string_view name) {
    for (const auto& [k, v] : f.headers) {
        if (k == name) return v;
    }
    return {};
}

class Forges : public ::testing::Test {
  protected:
    FakeJenkins jenkins{{}};
};

TEST_F(Forges, GiteaPushTriggersJenkins) {
    jenkins.add_job({"gitea", "hello-world", "main"}, {"COMMIT", "REF"});
    Daemon daemon(options(jenkins));
    const auto f = load_fixture("gitea", "push-branch-update");
    const auto signature = to_hex(hmac_sha256(k_secret, f.body));

    const auto forged =
        post(daemon, "/hooks/gitea",
             with(f.headers, "X-Gitea-Signature", to_hex(hmac_sha256("x", f.body))), f.body);
    EXPECT_EQ(forged.status, 401u) << forged.body;

    const auto r =
        post(daemon, "/hooks/gitea", with(f.headers, "X-Gitea-Signature", signature), f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    const auto a = answer(r);
    EXPECT_EQ(a.at("source"), "gitea");
    EXPECT_EQ(a.at("event"), "push");
    EXPECT_EQ(a.at("repository"), "gordon/hello-world");

    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto b = jenkins.builds().at(0);
    EXPECT_EQ(b.job, (std::vector<std::string>{"gitea", "hello-world", "main"}));
    EXPECT_EQ(b.param("COMMIT"), "ef98532add3b2feb7a137426bba1248724367df5");
    EXPECT_EQ(b.param("REF"), "refs/heads/main");
    EXPECT_EQ(jenkins.builds().size(), 1u);
}

TEST_F(Forges, GiteaFormDeliveryIsVerifiedOverItsJsonPayload) {
    jenkins.add_job({"gitea", "hello-world", "main"}, {"COMMIT", "REF"});
    Daemon daemon(options(jenkins));
    const auto f = load_fixture("gitea", "push-branch-update");
    std::string form = "payload=";
    for (const unsigned char c : f.body) {
        if (std::isalnum(c)) {
            form += static_cast<char>(c);
        } else {
            static constexpr char hex[] = "0123456789ABCDEF";
            form += '%';
            form += hex[c >> 4];
            form += hex[c & 0xf];
        }
    }
    Headers headers;
    for (const auto& [k, v] : f.headers) {
        if (k != "Content-Type") headers.emplace_back(k, v);
    }
    headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    // Gitea signs the JSON, not the form bytes it sends.
    headers.emplace_back("X-Gitea-Signature", to_hex(hmac_sha256(k_secret, f.body)));
    const auto r = post(daemon, "/hooks/gitea", headers, form);
    ASSERT_EQ(r.status, 202u) << r.body;
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).param("COMMIT"), "ef98532add3b2feb7a137426bba1248724367df5");
}

TEST_F(Forges, ForgejoPullRequestTriggersJenkins) {
    jenkins.add_job({"forgejo", "pr"}, {"PR", "BRANCH"});
    Daemon daemon(options(jenkins));
    const auto f = load_fixture("forgejo", "pull_request-opened");
    const auto r =
        post(daemon, "/hooks/forgejo",
             with(f.headers, "X-Forgejo-Signature", to_hex(hmac_sha256(k_secret, f.body))), f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(answer(r).at("event"), "pull_request");
    EXPECT_EQ(answer(r).at("action"), "opened");
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto b = jenkins.builds().at(0);
    EXPECT_EQ(b.job, (std::vector<std::string>{"forgejo", "pr"}));
    EXPECT_EQ(b.param("PR"), "1");
    EXPECT_EQ(b.param("BRANCH"), "feature/changes");
}

// The real Bitbucket Cloud push with a second branch updated in the same delivery.
Fixture bitbucket_push_of_two_branches() {
    auto f = load_fixture("bitbucket-cloud", "repo_push-branch-update");
    auto payload = json::parse(f.body);
    auto& changes = payload.at("push").at("changes").as_array();
    auto second = changes.at(0);
    second.at("new").as_object()["name"] = "develop";
    second.at("new").at("target").as_object()["hash"] = "1111111111111111111111111111111111111111";
    second.at("old").as_object()["name"] = "develop";
    changes.push_back(second);
    f.body = json::serialize(payload);
    return f;
}

TEST_F(Forges, BitbucketCloudPushOfTwoBranchesIsOneDeliveryWithTwoTriggers) {
    jenkins.add_job({"bitbucket-cloud", "temp", "master"}, {"COMMIT", "REF"});
    jenkins.add_job({"bitbucket-cloud", "temp", "develop"}, {"COMMIT", "REF"});
    Daemon daemon(options(jenkins));
    const auto f = bitbucket_push_of_two_branches();
    const auto r =
        post(daemon, "/hooks/bitbucket",
             with(f.headers, "X-Hub-Signature", "sha256=" + to_hex(hmac_sha256(k_secret, f.body))),
             f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    const auto a = answer(r);
    ASSERT_EQ(a.at("events").as_array().size(), 2u);
    EXPECT_EQ(a.at("events").at(1).at("ref"), "refs/heads/develop");
    ASSERT_EQ(a.at("triggers").as_array().size(), 2u);
    EXPECT_EQ(a.at("triggers").at(0).at("event"), 0);
    EXPECT_EQ(a.at("triggers").at(1).at("event"), 1);
    EXPECT_EQ(a.at("matched_rules"), json::array{"branches"});
    // The answer's members in the order it has always written them, numbers as numbers, no
    // member twice: its text is what Boost.JSON writes for the values it holds.
    EXPECT_EQ(r.body, json::serialize(a) + "\n");
    const auto keys = [](const json::value& v) {
        std::vector<std::string> out;
        for (const auto& member : v.as_object()) out.emplace_back(member.key());
        return out;
    };
    EXPECT_EQ(keys(a), (std::vector<std::string>{"delivery", "source", "event", "repository", "ref",
                                                 "commit", "events", "status", "matched_rules",
                                                 "triggers", "skipped"}));
    EXPECT_EQ(keys(a.at("events").at(1)), (std::vector<std::string>{"event", "ref", "commit"}));
    EXPECT_EQ(keys(a.at("triggers").at(1)),
              (std::vector<std::string>{"id", "rule", "jenkins", "job", "event"}));

    ASSERT_TRUE(jenkins.wait_for_builds(2, k_deadline)) << daemon.log();
    std::set<std::vector<std::string>> jobs;
    for (const auto& b : jenkins.builds()) jobs.insert(b.job);
    EXPECT_EQ(jobs, (std::set<std::vector<std::string>>{{"bitbucket-cloud", "temp", "master"},
                                                        {"bitbucket-cloud", "temp", "develop"}}));
    // One delivery, recorded once, with both triggers.
    const auto id = header_of(f, "X-Request-UUID");
    const auto stored = delivery(daemon, id);
    EXPECT_EQ(stored.at("provider"), "bitbucket-cloud");
    EXPECT_EQ(stored.at("triggers").as_array().size(), 2u);

    // Bitbucket retries on 5xx with the same X-Request-UUID: a duplicate, nothing queued again.
    const auto again =
        post(daemon, "/hooks/bitbucket",
             with(f.headers, "X-Hub-Signature", "sha256=" + to_hex(hmac_sha256(k_secret, f.body))),
             f.body);
    EXPECT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(answer(again).at("status"), "duplicate");
}

TEST_F(Forges, BitbucketDataCenterPushTriggersJenkinsAndPingIsAnswered) {
    jenkins.add_job({"bitbucket-server", "deployment-automation", "renovate-all"},
                    {"COMMIT", "REF"});
    Daemon daemon(options(jenkins));
    const auto ping = load_fixture("bitbucket-server", "diagnostics-ping");
    const auto pong = post(daemon, "/hooks/bitbucket-dc", ping.headers, ping.body);
    EXPECT_EQ(pong.status, 200u) << pong.body;
    EXPECT_EQ(answer(pong).at("status"), "pong");

    const auto f = load_fixture("bitbucket-server", "refs_changed-branch-update");
    EXPECT_EQ(post(daemon, "/hooks/bitbucket-dc", f.headers, f.body).status, 401u);
    const auto r =
        post(daemon, "/hooks/bitbucket-dc",
             with(f.headers, "X-Hub-Signature", "sha256=" + to_hex(hmac_sha256(k_secret, f.body))),
             f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    const auto b = jenkins.builds().at(0);
    EXPECT_EQ(b.job, (std::vector<std::string>{"bitbucket-server", "deployment-automation",
                                               "renovate-all"}));
    EXPECT_EQ(b.param("COMMIT"), "76797d54bca87db6d1e3e82ee40622c7908aa514");
    // The ping was never recorded.
    const auto listed = http_request(daemon.admin_port(), "GET", "/api/v1/deliveries",
                                     {{"Authorization", std::string("Bearer ") + k_admin_token}});
    EXPECT_EQ(json::parse(listed.body).at("deliveries").as_array().size(), 1u) << listed.body;

    // A Bitbucket Cloud hook pointed here signs alike: refused by its event key, so the hook's
    // history shows a failure instead of a delivery that built nothing.
    const auto cloud = load_fixture("bitbucket-cloud", "repo_push-branch-update");
    const auto wrong = post(daemon, "/hooks/bitbucket-dc",
                            with(cloud.headers, "X-Hub-Signature",
                                 "sha256=" + to_hex(hmac_sha256(k_secret, cloud.body))),
                            cloud.body);
    EXPECT_EQ(wrong.status, 400u) << wrong.body;
    EXPECT_EQ(answer(wrong).at("error"),
              "the event is another forge's: 'repo:push' is not a Bitbucket Data Center event; "
              "point the hook at a source of its kind (bitbucket-cloud or bitbucket-server)")
        << wrong.body;
}

// GitLab's Standard Webhooks headers for `body`, signed at `signed_at` (Unix seconds).
Headers gitlab_signed(const Fixture& f, const std::string& id, std::int64_t signed_at) {
    const auto content = id + "." + std::to_string(signed_at) + "." + f.body;
    auto headers = f.headers;
    headers.emplace_back("webhook-id", id);
    headers.emplace_back("webhook-timestamp", std::to_string(signed_at));
    headers.emplace_back("webhook-signature",
                         "v1," + to_base64(hmac_sha256(k_signing_key, content)));
    return headers;
}

TEST_F(Forges, GitlabSignedWebhookTriggersJenkinsAndRefusesReplays) {
    jenkins.add_job({"gitlab", "woodpecker", "main"}, {"COMMIT", "REF"});
    Daemon daemon(options(jenkins));
    const auto f = load_fixture("gitlab", "push-branch-update");
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    const std::string id = "7c1a6c52-0d4e-4f5e-8f7e-5b2f2a9c0001";

    // Captured ten minutes ago and sent again: outside the 5-minute window.
    const auto stale = post(daemon, "/hooks/gitlab", gitlab_signed(f, id, now - 600), f.body);
    EXPECT_EQ(stale.status, 401u) << stale.body;
    EXPECT_NE(stale.body.find("outside the accepted window"), std::string::npos) << stale.body;

    const auto r = post(daemon, "/hooks/gitlab", gitlab_signed(f, id, now), f.body);
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(answer(r).at("delivery"), id.c_str());
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).job,
              (std::vector<std::string>{"gitlab", "woodpecker", "main"}));

    // A retry: same webhook-id, a fresh timestamp and signature. Recognized by its id.
    const auto retry = post(daemon, "/hooks/gitlab", gitlab_signed(f, id, now + 1), f.body);
    EXPECT_EQ(retry.status, 200u) << retry.body;
    EXPECT_EQ(answer(retry).at("status"), "duplicate");
    EXPECT_EQ(jenkins.builds().size(), 1u);
}

TEST_F(Forges, GenericSourceTriggersJenkinsFromPayloadFields) {
    jenkins.add_job({"deploy"}, {"ARTIFACT"});
    Daemon daemon(options(jenkins));
    const std::string body = R"({"event_type":"deployed","data":{"repo_key":"libs-release-local",)"
                             R"("path":"org/acme/app/1.4.2/app-1.4.2.jar"}})";
    const auto now = std::to_string(std::time(nullptr));
    const Headers headers{
        {"Content-Type", "application/json"},
        {"X-Delivery", "art-1"},
        {"X-Timestamp", now},
        {"X-Signature", "sha256=" + to_hex(hmac_sha256(k_secret, now + "." + body))}};

    const Headers unsigned_headers{{"Content-Type", "application/json"}, {"X-Delivery", "art-0"}};
    EXPECT_EQ(post(daemon, "/hooks/artifacts", unsigned_headers, body).status, 401u);

    const auto r = post(daemon, "/hooks/artifacts", headers, body);
    ASSERT_EQ(r.status, 202u) << r.body;
    EXPECT_EQ(answer(r).at("event"), "other");
    EXPECT_EQ(answer(r).at("delivery"), "art-1");
    ASSERT_TRUE(jenkins.wait_for_builds(1, k_deadline)) << daemon.log();
    EXPECT_EQ(jenkins.builds().at(0).job, (std::vector<std::string>{"deploy"}));
    EXPECT_EQ(jenkins.builds().at(0).param("ARTIFACT"), "org/acme/app/1.4.2/app-1.4.2.jar");
}

}  // namespace
}  // namespace hookrelay::test
