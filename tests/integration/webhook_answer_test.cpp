// The answer the forge shows in its delivery log stays small whatever the delivery holds: every
// value taken from the delivery is cut to a bounded length with an ellipsis.
#include "support/daemon.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

constexpr const char* k_secret = "webhook-answer-secret-91b7";
// What the daemon echoes at most of one value, ellipsis included (app::k_max_echoed_bytes).
constexpr std::size_t k_max_echoed = 512;
constexpr std::string_view k_ellipsis = "\u2026";

const char* k_config = R"(listen: 127.0.0.1:0
state_dir: ./var
admin: {enabled: false}
server: {body_limit: 8MiB}
sources:
  github: {provider: github, secret: "${env:GH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:9/"}
rules:
  - name: every-branch
    when: {event: push}
    trigger: {jenkins: ci, job: "builds/{{ branch }}"}
  - name: main-only
    when: {event: push, branch: main}
    trigger: {jenkins: ci, job: "main"}
)";

Daemon::Options options() {
    Daemon::Options o;
    o.config_yaml = k_config;
    o.env = {{"GH_SECRET", k_secret}};
    return o;
}

void expect_cut(const json::value& v, std::string_view prefix) {
    const std::string_view text = v.as_string();
    EXPECT_LE(text.size(), k_max_echoed);
    EXPECT_EQ(text.substr(0, prefix.size()), prefix);
    EXPECT_TRUE(text.ends_with(k_ellipsis)) << text;
}

TEST(WebhookAnswer, HugeRefIsEchoedCut) {
    Daemon daemon(options());
    const std::string branch(4 * 1024 * 1024, 'x');
    auto push = github_push("huge-ref", branch);
    Headers h = push.headers;
    h.emplace_back("X-Hub-Signature-256", github_signature(k_secret, push.body));
    const auto r = http_request(daemon.port(), "POST", "/hooks/github", h, push.body);
    ASSERT_EQ(r.status, 202u) << r.body.substr(0, 300) << r.error;

    EXPECT_LT(r.body.size(), 8 * 1024u);
    const auto a = json::parse(r.body).as_object();
    expect_cut(a.at("ref"), "refs/heads/xxx");
    // The rendered job path and the reason that quotes the branch come from it too.
    expect_cut(a.at("triggers").at(0).at("job"), "builds/xxx");
    const std::string_view reason = a.at("skipped").at(0).at("reason").as_string();
    EXPECT_LE(reason.size(), k_max_echoed);
    EXPECT_TRUE(reason.starts_with("branch: 'xxx")) << reason;
}

}  // namespace
}  // namespace hookrelay::test
