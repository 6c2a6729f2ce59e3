// jenkins.<name>.url: the Jenkins root, not a job page; a url copied from a job's page is a
// `check` error that says what to write instead.
#include "config/load.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> errors_for(const std::string& url) {
    const auto yaml =
        "sources:\n  gh: {provider: github, insecure: true}\njenkins:\n  ci: {url: \"" + url +
        "\"}\n";
    const auto loaded = load_string(yaml, "c.yaml");
    std::vector<std::string> out;
    for (const auto& e : loaded.errors) out.push_back(to_string(e));
    return out;
}

TEST(ConfigJenkinsUrl, JobPageUrlIsRefusedWithTheRootAndTheJobPath) {
    EXPECT_THAT(errors_for("https://ci.example.com/job/acme/job/app/"),
                ElementsAre("c.yaml:4:13: jenkins 'ci': url "
                            "'https://ci.example.com/job/acme/job/app/' points at a job, not at "
                            "Jenkins: write url 'https://ci.example.com/' and put the job path "
                            "'acme/app' into the rules' trigger `job:`"));
}

TEST(ConfigJenkinsUrl, JobPageUrlUnderAContextPathKeepsTheContextPathAndRootsPass) {
    EXPECT_THAT(errors_for("http://10.0.0.5:8080/jenkins/job/app"),
                ElementsAre("c.yaml:4:13: jenkins 'ci': url "
                            "'http://10.0.0.5:8080/jenkins/job/app/' points at a job, not at "
                            "Jenkins: write url 'http://10.0.0.5:8080/jenkins/' and put the job "
                            "path 'app' into the rules' trigger `job:`"));
    // Roots, with or without a context path, are what the url is for.
    EXPECT_THAT(errors_for("https://ci.example.com/"), IsEmpty());
    EXPECT_THAT(errors_for("http://10.0.0.5:8080/jenkins"), IsEmpty());
    EXPECT_THAT(errors_for("https://jobs.example.com/"), IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
