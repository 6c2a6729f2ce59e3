// jenkins.<name>.url: the Jenkins root, not a job page; a url copied from a job's page is a
// `check` error that says what to write instead.
#include "load_errors.hpp"

#include <gmock/gmock.h>

namespace hookrelay::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<std::string> errors_for(const std::string& url) {
    const auto yaml =
        "sources:\n  gh: {provider: github, insecure: true}\njenkins:\n  ci: {url: \"" + url +
        "\"}\n";
    return load_errors(yaml);
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

// What the HTTP client would refuse at the start of a run is refused by `check` already, and
// credentials written into a url are refused without being shown.
TEST(ConfigJenkinsUrl, AUrlTheClientCannotTakeIsRefusedAndItsCredentialsNeverShown) {
    EXPECT_THAT(errors_for("https://admin:Pa55w0rd@ci.example.com/"),
                ElementsAre(AllOf(HasSubstr("jenkins 'ci': url 'https://***@ci.example.com/' "
                                            "cannot be used: it holds user info"),
                                  Not(HasSubstr("Pa55w0rd")))));
    EXPECT_THAT(errors_for("https://admin:Pa55w0rd@ci.example.com/job/app/"),
                ElementsAre(AllOf(HasSubstr("write url 'https://***@ci.example.com/'"),
                                  Not(HasSubstr("Pa55w0rd")))));
    EXPECT_THAT(errors_for("https://ci.example.com:99999/"),
                ElementsAre(HasSubstr("url port must be a number from 1 to 65535")));
    EXPECT_THAT(errors_for("https://ci.example.com/?x=1"),
                ElementsAre(HasSubstr("cannot be used")));
    EXPECT_THAT(errors_for("https:///"), ElementsAre(HasSubstr("url has no host")));
}

TEST(ConfigJenkinsUrl, ACaFileThatCannotBeReadIsRefused) {
    const auto yaml = std::string("sources:\n  gh: {provider: github, insecure: true}\n") +
                      "jenkins:\n  ci: {url: \"https://ci/\", ca_file: /nonexistent/ca.pem}\n";
    EXPECT_THAT(load_errors(yaml),
                ElementsAre(HasSubstr("jenkins 'ci'.ca_file '/nonexistent/ca.pem' cannot "
                                      "be read: No such file or directory")));
    const auto directory = std::string("sources:\n  gh: {provider: github, insecure: true}\n") +
                           "jenkins:\n  ci: {url: \"https://ci/\", ca_file: /tmp}\n";
    EXPECT_THAT(load_errors(directory),
                ElementsAre(HasSubstr("'/tmp' is a directory, not a PEM file")));
    // Away from the service (`explain`, secrets unresolved), the file is not looked at.
    LoadOptions away;
    away.resolve_secrets = false;
    EXPECT_THAT(load_errors(yaml, away), IsEmpty());
}

}  // namespace
}  // namespace hookrelay::config
