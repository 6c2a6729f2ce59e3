// The command line: --version, check, explain, and start-up refusals, run as a user would.
#include "support/daemon.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace hookrelay::test {
namespace {

namespace json = boost::json;

const std::string k_example = std::string(HOOKRELAY_SOURCE_DIR) + "/config/hookrelay.yaml";
const std::vector<std::pair<std::string, std::string>> k_example_env = {
    {"GITHUB_WEBHOOK_SECRET", "s1"},
    {"GITLAB_WEBHOOK_TOKEN", "t1"},
    {"JENKINS_API_TOKEN", "j1"},
    {"HOOKRELAY_ADMIN_TOKEN", "a1"}};

TEST(Cli, PrintsVersion) {
    const auto r = run_hookrelay({"--version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("hookrelay 0."), std::string::npos) << r.out;
}

TEST(Cli, ExampleConfigChecksClean) {
    const auto r = run_hookrelay({"check", "--config", k_example}, k_example_env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("OK (2 source(s), 1 jenkins, 3 rule(s))"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

// The configs the container image and compose files ship: what a user starts from.
TEST(Cli, ShippedContainerConfigsCheckClean) {
    auto env = k_example_env;
    env.emplace_back("HOOKRELAY_DATABASE_URL", "postgresql://hookrelay:pw@postgres:5432/hookrelay");
    for (const char* dir : {"container", "container-postgres"}) {
        const auto path = std::string(HOOKRELAY_SOURCE_DIR) + "/config/" + dir + "/hookrelay.yaml";
        const auto r = run_hookrelay({"check", "--config", path}, env);
        EXPECT_EQ(r.exit_code, 0) << path << ": " << r.err;
        EXPECT_NE(r.out.find("OK (2 source(s), 1 jenkins, 2 rule(s))"), std::string::npos)
            << path << ": " << r.out;
        EXPECT_EQ(r.err.find("warning"), std::string::npos) << path << ": " << r.err;
    }
}

// A claim_lease the daemon would warn about at start: check says so too, and the config is still
// valid.
TEST(Cli, CheckWarnsOfAClaimLeaseAStoreSlowToAnswerCanOutlast) {
    TempDir dir;
    const std::string base = R"(listen: 127.0.0.1:8080
sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}"}
jenkins:
  ci: {url: "http://jenkins.example:8080/", user: u, api_token: "${env:HR_TEST_SECRET}"}
rules:
  - {name: a, when: {event: push}, trigger: {jenkins: ci, job: x}}
)";
    const auto risky = dir.write("risky.yaml", base + "dispatch: {claim_lease: 4s}\n");
    const auto r = run_hookrelay({"check", "--config", risky}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: dispatch.claim_lease (4000 ms) is shorter than 10000 ms"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("raise claim_lease"), std::string::npos) << r.err;

    const auto fine = dir.write(
        "fine.yaml",
        base +
            "server: {store_timeout: 1s}\ndispatch: {claim_lease: 4s, claim_renew_interval: 1s}\n");
    const auto f = run_hookrelay({"check", "--config", fine}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(f.exit_code, 0) << f.err;
    EXPECT_EQ(f.err.find("warning"), std::string::npos) << f.err;
}

TEST(Cli, CheckReportsEveryErrorWithFileLineColumn) {
    TempDir dir;
    const auto path = dir.write("bad.yaml", R"(listen: 0.0.0.0:8080
sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}", sekret: x}
  lab: {provider: gitlab}
jenkins:
  ci: {url: "ftp://jenkins/"}
rules:
  - name: a
    when: {brnch: main, tag: "[unclosed"}
    trigger: {jenkins: nope, job: "x/{{ comit }}"}
)");
    const auto r = run_hookrelay({"check", "--config", path}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_NE(r.exit_code, 0);
    const auto& e = r.err;
    EXPECT_NE(e.find(path + ":3:63: unknown key 'sekret'"), std::string::npos) << e;
    EXPECT_NE(e.find(path + ":4:3: source 'lab': no token configured"), std::string::npos) << e;
    EXPECT_NE(e.find(path + ":6:13: jenkins 'ci': url 'ftp://jenkins/' must start with"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":9:12:"), std::string::npos) << e;  // brnch
    EXPECT_NE(e.find("did you mean 'branch'"), std::string::npos) << e;
    EXPECT_NE(e.find(path + ":9:31:"), std::string::npos) << e;  // [unclosed
    EXPECT_NE(e.find(path + ":10:24: rule 'a': unknown jenkins 'nope'"), std::string::npos) << e;
    EXPECT_NE(e.find(path + ":10:41: rule 'a': job: unknown variable 'comit'"), std::string::npos)
        << e;
    EXPECT_NE(e.find("7 errors in"), std::string::npos) << e;
}

// What `run` would refuse, or take other than meant, `check` says before a deployment: a config
// that checks OK starts.
TEST(Cli, CheckRefusesWhatTheDaemonWouldRefuseOrMisread) {
    TempDir dir;
    const auto path = dir.write("misread.yaml", R"(listen: 0.0.0.0:9090
state_dir: "${env:STATE_DIRECTORY}"
sources:
  "my hook?x": {provider: github, secret: "${env:HR_TEST_SECRET}"}
jenkins:
  ci:
    url: "http://jenkins.example:8080/"
    user: "${env:JENKINS_USER}"
    api_token: "${env:HR_TEST_SECRET}"
    probe_initial: 10m
    probe_max: 1s
rules:
  - {name: a, when: {event: push}, trigger: {jenkins: ci, job: x}}
)");
    const auto r = run_hookrelay({"check", "--config", path}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    for (const char* said : {
             ":2:12: state_dir: ${env:STATE_DIRECTORY} is taken as written here",
             ":4:3: source 'my hook?x': its name makes the path '/hooks/my hook?x', which no "
             "forge can reach",
             "jenkins 'ci'.user: ${env:JENKINS_USER} is taken as written here",
             ":10:20: jenkins 'ci': probe_initial (600000 ms) is above probe_max (1000 ms)",
             "4 errors in",
         }) {
        EXPECT_NE(r.err.find(said), std::string::npos) << said << "\n" << r.err;
    }

    // A cap written alone, below its first step's default, is the whole backoff: fine.
    const auto cap = dir.write("cap.yaml", R"(sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}"}
jenkins:
  ci: {url: "http://jenkins.example:8080/", probe_max: 500ms}
)");
    const auto capped = run_hookrelay({"check", "--config", cap}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(capped.exit_code, 0) << capped.err;

    // A PostgreSQL URL libpq cannot parse: `run` exits 78 on it, before any listener.
    const auto pg = dir.write("pg.yaml", R"(store:
  backend: postgres
  postgres: {url: "${env:DBURL}"}
sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}"}
)");
    const auto bad = run_hookrelay(
        {"check", "--config", pg},
        {{"HR_TEST_SECRET", "v"},
         {"DBURL", "postgresql://u:secret-pw@127.0.0.1:1/db?options=-csearch_path=x"}});
    EXPECT_EQ(bad.exit_code, 1) << bad.err;
    EXPECT_NE(bad.err.find("store.postgres.url is not a valid PostgreSQL connection string: extra "
                           "key/value separator \"=\" in URI query parameter: \"options\""),
              std::string::npos)
        << bad.err;
    EXPECT_EQ(bad.err.find("secret-pw"), std::string::npos) << bad.err;
    EXPECT_EQ(bad.out.find("OK"), std::string::npos) << bad.out;
    const auto good = run_hookrelay(
        {"check", "--config", pg},
        {{"HR_TEST_SECRET", "v"},
         {"DBURL", "postgresql://u:secret-pw@127.0.0.1:1/db?options=-csearch_path%3Dx"}});
    EXPECT_EQ(good.exit_code, 0) << good.err;
}

// Both listeners on one port: the second bind would fail with "address in use", as if another
// process held it. A warning, not an error: with systemd's socket `listen` does not apply.
TEST(Cli, CheckWarnsOfBothListenersOnOnePort) {
    TempDir dir;
    const auto check = [&](const std::string& listen, const std::string& admin) {
        const auto path =
            dir.write("l.yaml", "listen: \"" + listen + "\"\nadmin: {listen: \"" + admin +
                                    "\"}\nsources:\n  github: {provider: "
                                    "github, secret: \"${env:S}\"}\n");
        const auto r = run_hookrelay({"check", "--config", path}, {{"S", "v"}});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.err;
    };
    EXPECT_NE(check("0.0.0.0:9090", "127.0.0.1:9090")
                  .find("warning: admin.listen (127.0.0.1:9090) and listen (0.0.0.0:9090) are the "
                        "same port"),
              std::string::npos);
    EXPECT_NE(check("[::]:8080", "127.0.0.1:8080").find("listen ([::]:8080) are the same port"),
              std::string::npos);
    EXPECT_EQ(check("0.0.0.0:8080", "[::1]:8080"), "");  // other families
    EXPECT_EQ(check("10.0.0.1:8080", "127.0.0.1:8080"), "");
    EXPECT_EQ(check("127.0.0.1:8080", "127.0.0.1:9090"), "");
}

// A status API address where the forge's API is not would have every status answered 404 and
// dropped: check says so, and where the posts would go.
TEST(Cli, CheckWarnsOfAStatusApiUrlWhereTheForgesApiIsNot) {
    TempDir dir;
    const auto path = dir.write("s.yaml", R"(sources:
  gitea:
    provider: gitea
    secret: "${env:S}"
    status: {token: "${env:S}", api_url: "https://git.example.com/"}
  bitbucket-dc:
    provider: bitbucket-server
    secret: "${env:S}"
    status: {token: "${env:S}", api_url: "https://bb.example.com/bitbucket"}
)");
    const auto r = run_hookrelay({"check", "--config", path}, {{"S", "v"}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err,
              "warning: source 'gitea': status.api_url 'https://git.example.com' does not end in "
              "/api/v1, where Gitea's and Forgejo's API is (https://HOST/api/v1); a post would go "
              "to https://git.example.com/repos/OWNER/REPO/statuses/SHA\n");
}

TEST(Cli, ATlsKeyLeftOutIsOneErrorThatSaysSo) {
    TempDir dir;
    const auto path = dir.write("tls.yaml", R"(server:
  tls: {certificate: /etc/hostname}
sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}"}
)");
    const auto r = run_hookrelay({"check", "--config", path}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, path +
                         ":2:8: server.tls: `key:` is required (a PEM file path or a "
                         "reference)\n1 error in " +
                         path + "\n");
    // An empty one (a template's unset value) is refused too, not TLS turned off.
    const auto empty = dir.write("empty.yaml", R"(server:
  tls: {certificate: /etc/hostname, key: ""}
sources:
  github: {provider: github, secret: "${env:HR_TEST_SECRET}"}
)");
    const auto e = run_hookrelay({"check", "--config", empty}, {{"HR_TEST_SECRET", "v"}});
    EXPECT_EQ(e.exit_code, 1);
    EXPECT_NE(e.err.find("server.tls.key is empty"), std::string::npos) << e.err;
}

TEST(Cli, CheckRefusesHostNamesToListenOn) {
    TempDir dir;
    const auto path = dir.write("names.yaml", R"(listen: localhost:8080
admin:
  listen: "localhost:9090"
sources:
  github: {provider: github, insecure: true}
)");
    const auto r = run_hookrelay({"check", "--config", path});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(path + ":1:9: listen: 'localhost' is not an IP address (hookrelay does "
                                "not resolve host names): use 127.0.0.1:8080 or [::1]:8080"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(path + ":3:12: admin.listen: 'localhost' is not an IP address"),
              std::string::npos)
        << r.err;
}

TEST(Cli, CheckReportsTyposInValuesWithDidYouMean) {
    TempDir dir;
    const auto path = dir.write("typos.yaml", R"(sources:
  github: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://127.0.0.1:1/"}
rules:
  - name: a
    when: {event: psuh, source: githb}
    trigger: {jenkins: ci, job: x}
  - name: b
    when: {event: pull_request, action: opend, pull_request.draft: flase}
    trigger: {jenkins: ci, job: x}
)");
    const auto r = run_hookrelay({"check", "--config", path});
    EXPECT_NE(r.exit_code, 0);
    const auto& e = r.err;
    EXPECT_NE(e.find(path + ":7:19: rule 'a': event: 'psuh' is not an event (did you mean "
                            "'push'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":7:33: rule 'a': source: 'githb' is not a configured source (did "
                            "you mean 'github'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":10:41: rule 'b': action: 'opend' is not an action of pull_request "
                            "events (did you mean 'opened'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":10:68: rule 'b': pull_request.draft: 'flase' is not true or false "
                            "(did you mean 'false'?)"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("4 errors in"), std::string::npos) << e;
}

TEST(Cli, CheckReportsJenkinsUrlPathsAndTemplatesThatCanNeverRender) {
    TempDir dir;
    const auto path = dir.write("jenkins.yaml", R"(sources:
  github: {provider: github, insecure: true}
jenkins:
  ci: {url: "http://127.0.0.1:1/"}
  pasted: {url: "https://ci.example.com/job/acme/job/app/"}
rules:
  - name: from-url
    when: {event: push}
    trigger: {jenkins: ci, job: "job/acme/job/app"}
  - name: pr-on-push
    when: {event: push}
    trigger: {jenkins: ci, job: "acme/app", parameters: {PR: "{{ pull_request.number }}"}}
  - name: tag-job-on-push
    when: {event: [push, pull_request]}
    trigger: {jenkins: ci, job: "acme/{{ tag }}"}
  - name: fine
    when: {event: [push, pull_request]}
    trigger:
      jenkins: ci
      job: "acme/app"
      parameters: {PR: "{{ pull_request.number | default('') }}", B: "{{ branch }}"}
)");
    const auto r = run_hookrelay({"check", "--config", path});
    EXPECT_NE(r.exit_code, 0);
    const auto& e = r.err;
    EXPECT_NE(e.find(path + ":5:17: jenkins 'pasted': url "
                            "'https://ci.example.com/job/acme/job/app/' points at a job, not at "
                            "Jenkins: write url 'https://ci.example.com/' and put the job path "
                            "'acme/app' into the rules' trigger `job:`"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":9:34: rule 'from-url': job 'job/acme/job/app' looks copied from a "
                            "Jenkins URL: write 'acme/app'"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":12:63: rule 'pr-on-push': parameter 'PR': 'pull_request.number' is "
                            "never set for push events, the only events this rule matches, so it "
                            "could never render"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(path + ":15:39: rule 'tag-job-on-push': job: 'tag' is never set for push or "
                            "pull_request events"),
              std::string::npos)
        << e;
    EXPECT_EQ(e.find("rule 'fine'"), std::string::npos) << e;
    EXPECT_NE(e.find("4 errors in"), std::string::npos) << e;
}

TEST(Cli, MissingSecretIsAConfigError) {
    const auto r = run_hookrelay({"check", "--config", k_example},
                                 {{"GITLAB_WEBHOOK_TOKEN", "t1"}, {"JENKINS_API_TOKEN", "j1"}});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("environment variable GITHUB_WEBHOOK_SECRET is not set"),
              std::string::npos)
        << r.err;
}

TEST(Cli, InlineSecretIsRefused) {
    TempDir dir;
    const auto path = dir.write("inline.yaml", R"(sources:
  github: {provider: github, secret: "hunter2-inline"}
)");
    const auto r = run_hookrelay({"check", "--config", path});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("must be a secret reference"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hunter2-inline"), std::string::npos) << "the secret was echoed back";
}

TEST(Cli, RunRefusesSourceWithoutSecretUnlessInsecure) {
    TempDir dir;
    const auto path = dir.write("c.yaml", R"(listen: 127.0.0.1:0
sources:
  github: {provider: github}
)");
    const auto refused = run_hookrelay({"run", "--config", path});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("insecure: true"), std::string::npos) << refused.err;

    Daemon::Options o;
    // Its own state_dir: the default /var/lib/hookrelay is shared by everything on the machine.
    o.config_yaml =
        "listen: 127.0.0.1:0\nstate_dir: ./var\nsources:\n  github: {provider: github, "
        "insecure: true}\n";
    Daemon daemon(o);
    // Anyone who can reach the port can trigger builds: a warning, not news.
    const auto log = daemon.log();
    const auto at = log.find("without verification");
    ASSERT_NE(at, std::string::npos) << log;
    const auto line_start = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at);
    EXPECT_NE(log.substr(line_start, at - line_start).find("\"level\":\"warning\""),
              std::string::npos)
        << log;
}

// A source verified by something other than a secret (GitLab's signing token alone, as the docs
// suggest once GitLab signs) is not reported as unverified.
TEST(Cli, ASourceVerifiedBySigningTokenAloneIsNotCalledInsecure) {
    Daemon::Options o;
    o.config_yaml =
        "listen: 127.0.0.1:0\nstate_dir: ./var\nsources:\n  gitlab: {provider: gitlab, "
        "signing_token: \"${env:GL_SIGNING}\"}\n";
    o.env = {{"GL_SIGNING", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
    Daemon daemon(o);
    const auto log = daemon.log();
    EXPECT_NE(log.find("source gitlab (gitlab) at POST"), std::string::npos) << log;
    EXPECT_EQ(log.find("without verification"), std::string::npos) << log;
}

TEST(Cli, UsageErrorsExitWith2) {
    EXPECT_EQ(run_hookrelay({}).exit_code, 2);
    EXPECT_EQ(run_hookrelay({"chek"}).exit_code, 2);
    EXPECT_EQ(run_hookrelay({"check", "--config", k_example, "--bogus"}).exit_code, 2);
    EXPECT_EQ(run_hookrelay({"explain", "--config", k_example}).exit_code, 2);  // --source, --body
    EXPECT_EQ(run_hookrelay({"--help"}).exit_code, 0);
}

TEST(Cli, CheckReadsHookrelayConfigWhenNoConfigIsGiven) {
    auto env = k_example_env;
    env.emplace_back("HOOKRELAY_CONFIG", k_example);
    const auto r = run_hookrelay({"check"}, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(k_example + ": OK"), std::string::npos) << r.out;
}

TEST(Cli, ExplainPrintsOneLinePerRuleForPeople) {
    const std::string base = std::string(HOOKRELAY_TEST_DATA_DIR) + "/github/push-branch-update";
    const auto r = run_hookrelay({"explain", "--config", k_example, "--source", "github", "--body",
                                  base + ".json", "--headers-file", base + ".headers"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("RULE           DECISION\n"
                         "branch-builds  matched\n"
                         "pull-requests  no: event: 'push' matches none of [pull_request]\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("rule branch-builds -> jenkins ci job woodpecker-ci/woodpecker/main\n"
                         "      GIT_COMMIT=366701fde727cb7a9e7f21eb88264f59f6f9b89c\n"),
              std::string::npos)
        << r.out;
}

TEST(Cli, GeneratesAManPageAndBashCompletionFromTheCommandLine) {
    const auto man = run_hookrelay({"generate", "man"});
    EXPECT_EQ(man.exit_code, 0) << man.err;
    EXPECT_EQ(man.out.rfind(".\\\" Generated by", 0), 0u) << man.out;
    EXPECT_NE(man.out.find(".SS \"deliveries replay\""), std::string::npos) << man.out;
    EXPECT_NE(man.out.find(".B \\-\\-ready\\-file VALUE\n"), std::string::npos) << man.out;
    EXPECT_NE(man.out.find(".B \\-\\-json\n"), std::string::npos) << man.out;  // a flag
    const auto bash = run_hookrelay({"generate", "bash-completion"});
    EXPECT_EQ(bash.exit_code, 0) << bash.err;
    EXPECT_NE(bash.out.find("\"deliveries\") echo \"list show replay redeliver \""),
              std::string::npos)
        << bash.out;
    EXPECT_NE(bash.out.find("complete -F _hookrelay hookrelay"), std::string::npos);
}

// The example with a source for every forge; its source names are the fixture directories'.
const std::string k_forges_example = std::string(HOOKRELAY_SOURCE_DIR) + "/config/forges.yaml";

struct ExplainCase {
    const char* forge;
    const char* fixture;
    const char* event;
    std::vector<std::string> matched;
    const char* job;  // first trigger's job, or "" when nothing triggers
    const std::string* config = &k_example;
};

void PrintTo(const ExplainCase& c, std::ostream* os) {
    *os << c.forge << "/" << c.fixture;
}

class Explain : public ::testing::TestWithParam<ExplainCase> {};

TEST_P(Explain, PrintsEventAndDecision) {
    const auto& c = GetParam();
    const std::string base = std::string(HOOKRELAY_TEST_DATA_DIR) + "/" + c.forge + "/" + c.fixture;
    const bool form = std::string(c.fixture).ends_with("-form");
    const auto r = run_hookrelay({"explain", "--config", *c.config, "--source", c.forge, "--body",
                                  base + (form ? ".form" : ".json"), "--headers-file",
                                  base + ".headers", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto report = json::parse(r.out).as_object();
    EXPECT_EQ(report.at("event").at("event"), c.event) << r.out;
    if (std::string(c.event) == "ping") {
        EXPECT_TRUE(report.contains("decision"));
        return;
    }
    std::vector<std::string> matched;
    for (const auto& rule : report.at("rules").as_array()) {
        if (rule.at("matched").as_bool())
            matched.emplace_back(rule.at("name").as_string());
        else
            EXPECT_FALSE(rule.at("reason").as_string().empty()) << r.out;
    }
    EXPECT_EQ(matched, c.matched) << r.out;
    const auto& triggers = report.at("triggers").as_array();
    if (std::string(c.job).empty()) {
        EXPECT_TRUE(triggers.empty()) << r.out;
    } else {
        ASSERT_FALSE(triggers.empty()) << r.out;
        EXPECT_EQ(triggers.at(0).at("job"), c.job) << r.out;
    }
}

const std::vector<std::string> k_none;
const std::vector<std::string> k_branch = {"branch-builds"};
const std::vector<std::string> k_pr = {"pull-requests"};
const std::vector<std::string> k_release = {"release-tags"};

INSTANTIATE_TEST_SUITE_P(
    Fixtures, Explain,
    ::testing::Values(
        ExplainCase{"github", "create-tag", "other", k_none, ""},
        ExplainCase{"github", "delete-tag", "other", k_none, ""},
        ExplainCase{"github", "ping-repo-hook", "ping", k_none, ""},
        ExplainCase{"github", "pull_request-closed-unmerged", "pull_request", k_none, ""},
        ExplainCase{"github", "pull_request-opened", "pull_request", k_pr, "pr/hello-world"},
        ExplainCase{"github", "pull_request-reopened", "pull_request", k_pr, "pr/hello-world"},
        ExplainCase{"github", "pull_request-synchronize", "pull_request", k_pr, "pr/hello-world"},
        ExplainCase{"github", "push-branch-created", "push", k_branch,
                    "Codertocat/Hello-World/master"},
        ExplainCase{"github", "push-branch-created-form", "push", k_branch,
                    "Codertocat/Hello-World/master"},
        ExplainCase{"github", "push-branch-update", "push", k_branch,
                    "woodpecker-ci/woodpecker/main"},
        ExplainCase{"github", "push-tag-created", "tag", k_none, ""},
        ExplainCase{"github", "push-tag-deleted", "tag", k_none, ""},
        ExplainCase{"github", "release-created", "release", k_none, ""},
        ExplainCase{"github", "release-published", "release", k_none, ""},
        ExplainCase{"github", "workflow_run-completed", "other", k_none, ""},
        ExplainCase{"gitlab", "merge_request-merged", "pull_request", k_none, ""},
        ExplainCase{"gitlab", "merge_request-open-docs", "pull_request", k_pr, "pr/gitlab-test"},
        ExplainCase{"gitlab", "merge_request-update-push", "pull_request", k_pr, "pr/woodpecker"},
        ExplainCase{"gitlab", "push-branch-deleted", "push", k_none, ""},
        ExplainCase{"gitlab", "push-branch-update", "push", k_branch, "test/woodpecker/main"},
        ExplainCase{"gitlab", "push-docs", "push", k_branch, "mike/diaspora/master"},
        ExplainCase{"gitlab", "release-create", "release", k_none, ""},
        ExplainCase{"gitlab", "release-create-docs", "release", k_none, ""},
        ExplainCase{"gitlab", "tag_push-annotated", "tag", k_release, "release/woodpecker"},
        ExplainCase{"gitlab", "tag_push-docs", "tag", k_release, "release/example"},
        // Every other forge, on the example that has a source for each.
        ExplainCase{"gitea", "create-tag", "other", k_none, "", &k_forges_example},
        ExplainCase{"gitea", "delete-branch", "push", k_none, "", &k_forges_example},
        ExplainCase{"gitea", "delete-tag", "other", k_none, "", &k_forges_example},
        ExplainCase{"gitea", "pull_request-synchronized", "pull_request", k_pr,
                    "pr/multi-line-secrets", &k_forges_example},
        ExplainCase{"gitea", "push-branch-update", "push", k_branch, "gordon/hello-world/main",
                    &k_forges_example},
        ExplainCase{"gitea", "release-published", "release", k_none, "", &k_forges_example},
        ExplainCase{"forgejo", "pull_request-opened", "pull_request", k_pr, "pr/hello-world",
                    &k_forges_example},
        ExplainCase{"forgejo", "push-branch-created", "push", k_none, "", &k_forges_example},
        ExplainCase{"forgejo", "push-multi-commit", "push", k_branch,
                    "Test-CI/multi-line-secrets/main", &k_forges_example},
        ExplainCase{"bitbucket-cloud", "pullrequest-created-fork", "pull_request", k_pr, "pr/temp",
                    &k_forges_example},
        ExplainCase{"bitbucket-cloud", "pullrequest-fulfilled", "pull_request", k_none, "",
                    &k_forges_example},
        ExplainCase{"bitbucket-cloud", "pullrequest-updated-fork", "pull_request", k_pr, "pr/temp",
                    &k_forges_example},
        ExplainCase{"bitbucket-cloud", "repo_push-branch-deleted", "push", k_none, "",
                    &k_forges_example},
        ExplainCase{"bitbucket-cloud", "repo_push-branch-update", "push", k_branch,
                    "cloudbeers/temp/master", &k_forges_example},
        ExplainCase{"bitbucket-cloud", "repo_push-tag-created", "tag", k_none, "",
                    &k_forges_example},
        ExplainCase{"bitbucket-server", "diagnostics-ping", "ping", k_none, "", &k_forges_example},
        ExplainCase{"bitbucket-server", "pr-merged", "pull_request", k_none, "", &k_forges_example},
        ExplainCase{"bitbucket-server", "pr-opened", "pull_request", k_pr, "pr/test-repos",
                    &k_forges_example},
        ExplainCase{"bitbucket-server", "refs_changed-branch-created", "push", k_none, "",
                    &k_forges_example},
        ExplainCase{"bitbucket-server", "refs_changed-branch-deleted", "push", k_none, "",
                    &k_forges_example},
        ExplainCase{"bitbucket-server", "refs_changed-branch-update", "push", k_none, "",
                    &k_forges_example},
        ExplainCase{"gitlab", "push-branch-update", "push", k_branch, "test/woodpecker/main",
                    &k_forges_example}),
    [](const auto& info) {
        std::string name = std::string(info.param.forge) + "_" + info.param.fixture;
        if (info.param.config == &k_forges_example) name += "_on_forges_yaml";
        for (auto& ch : name) {
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        }
        return name;
    });

TEST(Cli, ExplainShowsEveryEventOfABitbucketPush) {
    // A real Bitbucket Data Center push with a second change: a new release branch.
    const std::string base = std::string(HOOKRELAY_TEST_DATA_DIR) + "/bitbucket-server/";
    auto payload = json::parse(read_file(base + "refs_changed-branch-update.json"));
    auto& changes = payload.at("changes").as_array();
    auto release = changes.at(0);
    release.at("ref").as_object()["id"] = "refs/heads/release/2.0";
    release.at("ref").as_object()["displayId"] = "release/2.0";
    release.as_object()["refId"] = "refs/heads/release/2.0";
    changes.push_back(release);
    TempDir dir;
    const auto body = dir.write("push.json", json::serialize(payload));
    const auto r = run_hookrelay({"explain", "--config", k_forges_example, "--source",
                                  "bitbucket-server", "--body", body, "--headers-file",
                                  base + "refs_changed-branch-update.headers", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto report = json::parse(r.out).as_object();
    ASSERT_EQ(report.at("events").as_array().size(), 2u) << r.out;
    EXPECT_EQ(report.at("events").at(0).at("branch"), "renovate-all");
    EXPECT_EQ(report.at("events").at(1).at("branch"), "release/2.0");
    // Each rule once per event; only the release branch builds.
    EXPECT_EQ(report.at("rules").as_array().size(), 2 * 4u) << r.out;
    const auto& triggers = report.at("triggers").as_array();
    ASSERT_EQ(triggers.size(), 1u) << r.out;
    EXPECT_EQ(triggers.at(0).at("event"), 1);
    EXPECT_EQ(triggers.at(0).at("job"), "DEV/deployment-automation/release%2F2.0");
}

TEST(Cli, ExplainAGenericDelivery) {
    TempDir dir;
    const auto body = dir.write("nexus.json", R"({"timestamp":"2024-05-02T10:11:12.000+00:00",
"nodeId":"52905B51","initiator":"admin/10.0.0.9","repositoryName":"releases",
"action":"CREATED","component":{"id":"08909bf0","format":"maven2","name":"app",
"group":"org.acme","version":"1.4.2"}})");
    const auto r =
        run_hookrelay({"explain", "--config", k_forges_example, "--source", "nexus", "--body", body,
                       "--header", "X-Nexus-Webhook-Id: rm:repository:component", "--header",
                       "X-Nexus-Webhook-Delivery: 1a2b", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto report = json::parse(r.out).as_object();
    EXPECT_EQ(report.at("event").at("event"), "other");
    EXPECT_EQ(report.at("event").at("provider"), "generic");
    EXPECT_EQ(report.at("event").at("forge_event"), "rm:repository:component");
    EXPECT_EQ(report.at("event").at("delivery_id"), "1a2b");
    const auto& triggers = report.at("triggers").as_array();
    ASSERT_EQ(triggers.size(), 1u) << r.out;
    EXPECT_EQ(triggers.at(0).at("job"), "deploy");
    EXPECT_EQ(triggers.at(0).at("parameters").at("COMPONENT"), "org.acme:app:1.4.2");
}

TEST(Cli, ForgesExampleChecksWithItsSecretsSet) {
    const auto r =
        run_hookrelay({"check", "--config", k_forges_example},
                      {{"GITHUB_WEBHOOK_SECRET", "a"},
                       {"GITLAB_SIGNING_TOKEN", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                       {"GITLAB_WEBHOOK_TOKEN", "b"},
                       {"GITEA_WEBHOOK_SECRET", "c"},
                       {"FORGEJO_WEBHOOK_SECRET", "d"},
                       {"BITBUCKET_CLOUD_WEBHOOK_SECRET", "e"},
                       {"BITBUCKET_SERVER_WEBHOOK_SECRET", "f"},
                       {"NEXUS_WEBHOOK_SECRET", "g"},
                       {"JENKINS_API_TOKEN", "h"}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("OK (7 source(s), 1 jenkins, 4 rule(s))"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace hookrelay::test
